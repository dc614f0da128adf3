using System.Net.WebSockets;
using SentryVibe.Protocol;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// The broker's end of a link (<see cref="LinkSocket"/>, the same transport as the runner's): answers the runner's
/// heartbeats that <paramref name="heartbeat"/> accepts, and tells when the error reply to a refused Hello has been
/// handed to the socket, so the link closes after the runner has its reason rather than on a clock
/// (docs/runner-protocol.md).
/// </summary>
internal sealed class LinkMessageHandler(WebSocket socket, Func<bool> heartbeat, TimeSpan refusalReplyDelay = default) : LinkSocket(socket)
{
    // Hello requests awaiting their reply; more than a few at once is an attacker's, and those are not tracked.
    private const int MaxTrackedHellos = 4;

    private readonly Lock _gate = new();
    private readonly List<RequestId> _hellos = [];
    private TaskCompletionSource? _refusalSent;

    /// <summary>
    /// Completes once the next error reply to a Hello has been sent. Called before the refused Hello throws, so the reply
    /// it waits for is that Hello's.
    /// </summary>
    public Task HelloErrorSentAsync()
    {
        lock (_gate)
        {
            _refusalSent ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _refusalSent.Task;
        }
    }

    protected override ValueTask OnHeartbeatAsync() => heartbeat() ? SendHeartbeatAsync() : default;

    protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
    {
        var message = await base.ReadCoreAsync(cancellationToken);
        if (message is JsonRpcRequest { IsResponseExpected: true } request
            && request.Method is nameof(IBrokerService.HelloAsync) or "Hello")
        {
            lock (_gate)
            {
                if (_hellos.Count < MaxTrackedHellos) _hellos.Add(request.RequestId);
            }
        }
        return message;
    }

    protected override async ValueTask WriteCoreAsync(JsonRpcMessage content, CancellationToken cancellationToken)
    {
        // Tests only (Broker:RefusalReplyDelay): a slow writer, to prove the close waits for the reply.
        if (refusalReplyDelay > TimeSpan.Zero && IsHelloError(content, remove: false)) await Task.Delay(refusalReplyDelay, cancellationToken);
        await base.WriteCoreAsync(content, cancellationToken);
    }

    protected override void OnSent(JsonRpcMessage content)
    {
        if (!IsHelloError(content, remove: true)) return;
        TaskCompletionSource? sent;
        lock (_gate)
        {
            sent = _refusalSent;
            _refusalSent = null;
        }
        sent?.TrySetResult();
    }

    private bool IsHelloError(JsonRpcMessage content, bool remove)
    {
        if (content is not JsonRpcError { RequestId: var id }) return false;
        lock (_gate)
        {
            return remove ? _hellos.Remove(id) : _hellos.Contains(id);
        }
    }
}
