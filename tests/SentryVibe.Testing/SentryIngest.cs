// A stand-in for sentry.io's ingest endpoint (no internet here): a real HTTP server on loopback that accepts the SDK's
// envelopes (gzip or not) and keeps their items, so tests can check what Web, Broker and Runner really send.
using System.IO.Compression;
using System.Net;
using System.Text.Json;

namespace SentryVibe.Testing;

public sealed record SentryItem(string Type, JsonElement Payload)
{
    /// <summary>The service tag every SentryVibe service puts on its events and transactions.</summary>
    public string? Service => Payload.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Object
        && t.TryGetProperty("service", out var s) ? s.GetString() : null;
    public string? ServerName => Payload.TryGetProperty("server_name", out var s) ? s.GetString() : null;
    public string? TraceId => Payload.TryGetProperty("contexts", out var c) && c.TryGetProperty("trace", out var t)
        && t.TryGetProperty("trace_id", out var id) ? id.GetString() : null;
    public string? Transaction => Payload.TryGetProperty("transaction", out var t) ? t.GetString() : null;
}

public sealed class SentryIngest : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<SentryItem> _items = [];
    private readonly Task _serving;

    public SentryIngest()
    {
        Port = SentryVibe.LocalPostgres.PostgresCluster.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public int Port { get; }

    /// <summary>The DSN to hand to a service: project 1, any key.</summary>
    public string Dsn => $"http://e2e0public0key@127.0.0.1:{Port}/1";

    public IReadOnlyList<SentryItem> Items
    {
        get { lock (_items) return _items.ToList(); }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                await AnswerAsync(context);
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The sender went away mid-request (a service the test stopped or killed): serve the next one all the same.
            }
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            using var body = new MemoryStream();
            var input = context.Request.Headers["Content-Encoding"] == "gzip"
                ? new GZipStream(context.Request.InputStream, CompressionMode.Decompress)
                : context.Request.InputStream;
            await input.CopyToAsync(body);
            var items = context.Request.Url!.AbsolutePath.EndsWith("/envelope/", StringComparison.Ordinal)
                ? ParseEnvelope(body.ToArray())
                : [];
            lock (_items) _items.AddRange(items);
            context.Response.StatusCode = 200;
            await context.Response.OutputStream.WriteAsync("{}"u8.ToArray());
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidDataException or KeyNotFoundException or ArgumentException)
        {
            lock (_items) _items.Add(new SentryItem("unreadable", JsonSerializer.SerializeToElement(new { error = e.Message })));
            context.Response.StatusCode = 400;
        }
        finally
        {
            context.Response.Close();
        }
    }

    /// <summary>Envelope: a header line, then per item a header line and a payload (of "length" bytes, else a line).</summary>
    public static List<SentryItem> ParseEnvelope(byte[] envelope)
    {
        var items = new List<SentryItem>();
        var position = NextLine(envelope, 0, out _);
        while (position < envelope.Length)
        {
            position = NextLine(envelope, position, out var headerLine);
            if (headerLine.Length == 0) continue;
            using var header = JsonDocument.Parse(headerLine);
            var type = header.RootElement.GetProperty("type").GetString() ?? "";
            ReadOnlyMemory<byte> payload;
            if (header.RootElement.TryGetProperty("length", out var length))
            {
                payload = envelope.AsMemory(position, length.GetInt32());
                position = Math.Min(envelope.Length, position + length.GetInt32() + 1);
            }
            else
            {
                position = NextLine(envelope, position, out payload);
            }
            if (payload.Length > 0 && payload.Span[0] == (byte)'{')
            {
                items.Add(new SentryItem(type, JsonDocument.Parse(payload).RootElement.Clone()));
            }
        }
        return items;
    }

    private static int NextLine(byte[] data, int start, out ReadOnlyMemory<byte> line)
    {
        var end = Array.IndexOf(data, (byte)'\n', start);
        if (end < 0) end = data.Length;
        line = data.AsMemory(start, end - start);
        return end + 1;
    }

    public async ValueTask DisposeAsync()
    {
        // Close alone, not Stop then Close: on Linux, Close after Stop binds the port again to remove its prefix (the
        // first removal already dropped the endpoint), and failed a CI run with "Address already in use" when another
        // test had been handed the freed port in between.
        _listener.Close();
        await _serving;
    }

    /// <summary>One line per item; a client report shows what its SDK dropped and why (a full send queue, say).</summary>
    public override string ToString() =>
        string.Join('\n', Items.Select(i => i.Type == "client_report" ? $"client_report {i.Payload}" : $"{i.Type} {i.Service} {i.Transaction} {i.TraceId}"));
}
