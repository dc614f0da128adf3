// Seam between the runner's work (Build/, DevServers/) and its link (Link/): the work reports, the link carries.
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Core;

/// <summary>Where the runner's work reports progress. Implemented by the durable outbox of the link.</summary>
public interface IEventSink
{
    /// <summary>Appends the event to the durable outbox (it survives a crash once this returns) and wakes the sender.</summary>
    ValueTask PublishAsync(Guid? projectId, ProjectEvent body, CancellationToken cancellationToken = default);
}
