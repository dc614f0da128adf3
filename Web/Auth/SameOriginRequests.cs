// The browser half of the trust boundary (docs/security.md): a request that changes state and rides on the UI cookie
// must come from this site's own pages. Bearer requests are unaffected: a cross-site page cannot set Authorization.
using Microsoft.Extensions.Primitives;

namespace SentryVibe.Web.Auth;

public static class SameOriginRequests
{
    /// <summary>
    /// True when a browser says the request comes from this origin: <c>Sec-Fetch-Site: same-origin</c>, or an
    /// <c>Origin</c> naming this request's own host and port. Either header saying otherwise, or neither present, is false.
    /// </summary>
    public static bool IsSameOrigin(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"];
        var origin = request.Headers.Origin;
        if (!StringValues.IsNullOrEmpty(site) && !string.Equals(site, "same-origin", StringComparison.OrdinalIgnoreCase)) return false;
        if (!StringValues.IsNullOrEmpty(origin) && !IsThisHost(origin.ToString(), request.Host)) return false;
        return !StringValues.IsNullOrEmpty(site) || !StringValues.IsNullOrEmpty(origin);
    }

    // Host and port, not the scheme: behind TLS termination the browser's https://app is this request's http://app,
    // and only this server answers on this host and port, whatever the scheme (as Go's CrossOriginProtection does).
    private static bool IsThisHost(string origin, HostString host) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && string.Equals(uri.Host, host.Host, StringComparison.OrdinalIgnoreCase)
        && (host.Port is { } port ? port == uri.Port : uri.IsDefaultPort);

    private static bool ChangesState(string method) =>
        !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method));

    /// <summary>
    /// Refuses (403 problem+json) a cookie-authenticated POST/PUT/PATCH/DELETE that is not same-origin: the API, logout,
    /// checkpoint restore, Blazor's form posts and its circuit endpoints alike. Runs after authentication.
    /// </summary>
    public static IApplicationBuilder UseSameOriginForCookieRequests(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (ChangesState(context.Request.Method)
            && context.User.Identity is { IsAuthenticated: true, AuthenticationType: AuthSchemes.Cookie }
            && !IsSameOrigin(context.Request))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails =
                {
                    Status = StatusCodes.Status403Forbidden,
                    Title = "Cross-site request refused",
                    Detail = "A request that changes something and signs in with the browser cookie must come from this site's own pages " +
                             "(Origin or Sec-Fetch-Site). Scripts and other clients send 'Authorization: Bearer <api token>' instead.",
                },
            });
            return;
        }
        await next(context);
    });
}
