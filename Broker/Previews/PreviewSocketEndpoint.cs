using SentryVibe.Broker.Link;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Maps <c>/runner/preview/{ticket}</c>, where a runner dials the socket of one preview connection (docs/runner-protocol.md,
/// "Preview relay"), or, with its link's spare key instead of a ticket, a spare socket for the next one ("Spare preview
/// sockets"). Every refusal — no or wrong token, a ticket unknown, used, expired or issued to another token, a spare key
/// withdrawn or its link's spares all there, not a WebSocket — is the same 404, so a caller learns nothing about which
/// tickets or keys exist. A dial for another replica's ticket or key (a load balancer chose this one) is passed on to
/// that replica once (<see cref="PreviewSocketReplicas"/>), which answers it by the same rules.
/// </summary>
public static class PreviewSocketEndpoint
{
    /// <summary>Every preview socket's path starts with this (<see cref="PreviewTraffic"/> tells them apart by it).</summary>
    public const string Prefix = LinkProtocol.RunnerPath + LinkProtocol.PreviewSocketSegment;

    public const string Path = Prefix + "/{ticket}";

    public static IEndpointConventionBuilder MapPreviewSockets(this WebApplication app) => app.Map(Path, HandleAsync);

    private static async Task HandleAsync(string ticket, HttpContext context, PreviewTickets tickets, PreviewSocketReplicas replicas, PreviewRelay relay)
    {
        var tokenHash = RunnerAuthenticator.PresentedTokenHash(context);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        if (tickets.TryTake(ticket, tokenHash, out var pending))
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var stream = new PreviewSocketStream(socket);
            if (!pending.Arrived.TrySetResult(stream)) return; // the broker stopped waiting meanwhile: the socket just closes
            await LiveUntilDoneAsync(stream, context);
        }
        else if (tickets.TryFindSpareOwner(ticket, tokenHash, out var owner) && owner.TryReserveSpare())
        {
            PreviewSocketStream? stream = null;
            try
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync();
                stream = new PreviewSocketStream(socket);
                owner.AddSpare(stream);
                await LiveUntilDoneAsync(stream, context);
            }
            finally
            {
                if (stream is null) owner.AddSpare(null); // the upgrade failed: the place is free again
            }
        }
        else if (!tickets.IsOurs(ticket) && !context.Request.Headers.ContainsKey(PreviewRelay.RelayedByHeader)
                 && await replicas.AddressForAsync(ticket, context.RequestAborted) is { } issuer)
        {
            await relay.ForwardSocketAsync(context, issuer);
        }
        else
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
        }
    }

    /// <summary>The request (and with it the socket) lives until the relay is done with the stream, or the runner goes away.</summary>
    private static Task LiveUntilDoneAsync(PreviewSocketStream stream, HttpContext context) =>
        stream.Completion.WaitAsync(context.RequestAborted).ContinueWith(static _ => { });
}
