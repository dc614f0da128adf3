using StreamJsonRpc;

namespace SentryVibe.Protocol;

/// <summary>What the broker calls on a runner, over the "rpc" channel of the runner's link.</summary>
[JsonRpcContract]
public partial interface IRunnerService
{
    /// <summary>
    /// Delivers one durable command. The runner records the id before it acts and answers a repeated id
    /// with <see cref="CommandAck.Duplicate"/> without running it again.
    /// </summary>
    Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the runner to dial a preview socket with <see cref="OpenPreviewChannel.Ticket"/> and connect it to the dev
    /// server of that project (and only that one); answered once the socket is open or refused.
    /// </summary>
    Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken);

    Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken);
}

/// <summary>What a runner calls on the broker.</summary>
[JsonRpcContract]
public partial interface IBrokerService
{
    /// <summary>First call on every connection: protocol version, identity and capabilities.</summary>
    Task<HelloReply> HelloAsync(RunnerHello hello, CancellationToken cancellationToken);

    /// <summary>
    /// Appends events from the runner's outbox. The reply is sent only after the rows are committed;
    /// intake is idempotent on (runner, seq).
    /// </summary>
    Task<EventAck> PublishEventsAsync(EventBatch batch, CancellationToken cancellationToken);

    /// <summary>Final outcome of a command the runner accepted earlier.</summary>
    Task ReportCommandResultAsync(CommandResult result, CancellationToken cancellationToken);

    Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken);
}

public sealed record RunnerHello(
    int ProtocolVersion,
    string RunnerId,
    string Version,
    string? Name = null,
    string? Hostname = null,
    IReadOnlyList<string>? Capabilities = null,
    IReadOnlyList<string>? Agents = null,
    string? PreviewProvider = null);

public sealed record HelloReply(
    int ProtocolVersion,
    string BrokerId,
    long CommittedThroughSeq, // highest seq of this runner already committed: the runner may drop its outbox up to it

    string? PreviewDomain = null,
    int HeartbeatSeconds = 5,
    int PublishCallsPerSecond = LinkProtocol.DefaultPublishCallsPerSecond, // the runner spaces its PublishEvents calls by it
    int BatchesInFlight = 1, // PublishEvents calls the runner may have unanswered at once (a broker that omits it: one)
    int EventsPerBatch = LinkProtocol.EventsPerBatchUnstated, // events the broker takes in one PublishEvents call
    bool AnswersEmptyHeartbeats = false, // an empty message is a heartbeat the broker answers (a broker that omits it: call HeartbeatAsync)
    string? PreviewSpareKey = null, // dial spare preview sockets with it (docs/runner-protocol.md, "Spare preview sockets"); null: none
    int PreviewSpares = 0); // spare preview sockets the broker holds for this link at most

public sealed record Heartbeat(DateTimeOffset SentAt, IReadOnlyList<Guid>? ActiveProjects = null);

public sealed record EventBatch(IReadOnlyList<RunnerEvent> Events);

/// <summary>
/// <c>CommittedThroughSeq</c> covers refused events too: they are settled (never stored) and the runner drops them.
/// <c>Refused</c> lists the batch's events the broker would not store, with the reason (absent when none were).
/// </summary>
public sealed record EventAck(long CommittedThroughSeq, IReadOnlyList<RefusedEvent>? Refused = null);

/// <summary>An event the broker refused to store: a project not assigned to this runner, a preview URL not allowed, …</summary>
public sealed record RefusedEvent(long Seq, string Reason);

public sealed record CommandEnvelope(Guid Id, RunnerCommand Command, DateTimeOffset? CreatedAt = null, string? TraceParent = null);

public sealed record CommandAck(Guid CommandId, bool Accepted, bool Duplicate = false, string? Error = null);

public sealed record CommandResult(Guid CommandId, bool Succeeded, string? Error = null);

public sealed record OpenPreviewChannel(Guid ProjectId, string Ticket);

/// <summary>The runner's answer to <see cref="OpenPreviewChannel"/>. No port: where the dev server listens is the runner's alone.</summary>
public sealed record PreviewChannelAck(bool Accepted, string? Error = null);
