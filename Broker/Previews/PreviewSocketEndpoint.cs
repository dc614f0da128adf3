using SentryVibe.Broker.Link;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Maps <c>/runner/preview/{ticket}</c>, where a runner dials the socket of one preview connection (docs/runner-protocol.md,
/// "Preview relay"). Every refusal — no or wrong token, a ticket unknown, used, expired or issued to another token, not
/// a WebSocket — is the same 404, so a caller learns nothing about which tickets exist.
/// </summary>
public static class PreviewSocketEndpoint
{
    /// <summary>Every preview socket's path starts with this (<see cref="PreviewTraffic"/> tells them apart by it).</summary>
    public const string Prefix = LinkProtocol.RunnerPath + LinkProtocol.PreviewSocketSegment;

    public const string Path = Prefix + "/{ticket}";

    public static IEndpointConventionBuilder MapPreviewSockets(this WebApplication app) => app.Map(Path, HandleAsync);

    private static async Task HandleAsync(string ticket, HttpContext context, PreviewTickets tickets)
    {
        if (!context.WebSockets.IsWebSocketRequest
            || !tickets.TryTake(ticket, RunnerAuthenticator.PresentedTokenHash(context), out var pending))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var stream = new PreviewSocketStream(socket);
        if (!pending.Arrived.TrySetResult(stream)) return; // the broker stopped waiting meanwhile: the socket just closes
        // The request (and with it the socket) lives until the relay is done with the stream, or the runner goes away.
        await stream.Completion.WaitAsync(context.RequestAborted).ContinueWith(static _ => { });
    }
}
