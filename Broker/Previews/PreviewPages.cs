using System.Net;
using System.Text;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The small pages the relay answers with instead of a browser error: they say why there is no app to show and
/// refresh themselves, so the preview comes up on its own once the reason is gone.
/// </summary>
public static class PreviewPages
{
    public static Task WriteAsync(HttpContext context, int status, string title, string message, IReadOnlyList<string>? lines = null, bool refresh = true)
    {
        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
        if (refresh) html.Append("<meta http-equiv=\"refresh\" content=\"3\">");
        html.Append("<title>").Append(Encode(title)).Append(" · SentryVibe preview</title><style>")
            .Append("""
                :root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
                body{margin:0;min-height:100vh;display:grid;place-items:center;background:Canvas;color:CanvasText}
                main{max-width:38rem;padding:2rem}
                h1{font-size:1.25rem;margin:0 0 .5rem}
                p{line-height:1.5;opacity:.85}
                pre{background:color-mix(in srgb,CanvasText 8%,Canvas);padding:.75rem;border-radius:.5rem;overflow:auto;font-size:.8rem;max-height:16rem}
                small{opacity:.6}
                """)
            .Append("</style></head><body><main>")
            .Append("<h1>").Append(Encode(title)).Append("</h1>")
            .Append("<p>").Append(Encode(message)).Append("</p>");
        if (lines is { Count: > 0 })
        {
            html.Append("<pre>");
            foreach (var line in lines.TakeLast(20)) html.Append(Encode(line)).Append('\n');
            html.Append("</pre>");
        }
        if (refresh) html.Append("<small>This page checks again every few seconds.</small>");
        html.Append("</main></body></html>");

        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["X-SentryVibe-Preview"] = title;
        return context.Response.WriteAsync(html.ToString(), context.RequestAborted);
    }

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
