using System.IO.Pipelines;
using Nerdbank.Streams;
using SentryVibe.Protocol;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// The broker's JSON-RPC message handler on a link's "rpc" channel: length-prefixed like the runner's
/// (<see cref="LinkTransport"/>, same size guard and formatter), writing straight into the mux channel, and telling
/// when the error reply to a refused Hello has been written and flushed, so the link closes after the runner has its
/// reason rather than on a clock (docs/runner-protocol.md).
/// </summary>
internal sealed class LinkMessageHandler : LengthHeaderMessageHandler
{
    // Hello requests awaiting their reply; more than a few at once is an attacker's, and those are not tracked.
    private const int MaxTrackedHellos = 4;

    private readonly TimeSpan _refusalReplyDelay;
    private readonly Lock _gate = new();
    private readonly List<RequestId> _hellos = [];
    private TaskCompletionSource<long>? _refusalFlushed;
    private bool _writingHelloError; // Write and FlushAsync of one message run under the base class's send lock

    public LinkMessageHandler(MultiplexingStream.Channel channel, TimeSpan refusalReplyDelay = default)
        : base(channel.Output,
            PipeReader.Create(new MessageLengthGuardStream(channel.AsStream(), LinkProtocol.MaxMessageBytes), new StreamPipeReaderOptions(leaveOpen: true)),
            LinkTransport.CreateFormatter())
    {
        _refusalReplyDelay = refusalReplyDelay;
    }

    /// <summary>
    /// Completes, with the reply's size in bytes, once the next error reply to a Hello has been written and flushed into
    /// the channel. Called before the refused Hello throws, so the reply it waits for is that Hello's.
    /// </summary>
    public Task<long> HelloErrorFlushedAsync()
    {
        lock (_gate)
        {
            _refusalFlushed ??= new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _refusalFlushed.Task;
        }
    }

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

    protected override void Write(JsonRpcMessage content, CancellationToken cancellationToken)
    {
        base.Write(content, cancellationToken);
        if (content is not IJsonRpcMessageWithId { RequestId: var id }) return;
        lock (_gate)
        {
            _writingHelloError = _hellos.Remove(id) && content is JsonRpcError;
        }
    }

    protected override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        // Tests only (Broker:RefusalReplyDelay): a slow writer, to prove the close waits for the reply.
        if (_writingHelloError && _refusalReplyDelay > TimeSpan.Zero) await Task.Delay(_refusalReplyDelay, cancellationToken);
        var size = _writingHelloError && Writer is { CanGetUnflushedBytes: true } writer ? writer.UnflushedBytes : 0;
        await base.FlushAsync(cancellationToken);
        if (!_writingHelloError) return;
        _writingHelloError = false;
        TaskCompletionSource<long>? flushed;
        lock (_gate)
        {
            flushed = _refusalFlushed;
            _refusalFlushed = null;
        }
        flushed?.TrySetResult(size);
    }
}
