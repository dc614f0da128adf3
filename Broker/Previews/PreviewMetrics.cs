using System.Diagnostics.Metrics;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The relay's bounded state as metrics (meter <c>SentryVibe.Broker</c>, exported by the service defaults): how full the
/// preview lookup cache is, how many lookups reached the database, how many preview channels are open, and
/// how many of them took a spare socket or waited for a ticket's. See docs/operations.md.
/// </summary>
public sealed class PreviewMetrics
{
    public const string MeterName = "SentryVibe.Broker";

    public PreviewMetrics(IMeterFactory meters, PreviewTargetStore targets, PreviewRelay relay, PreviewTickets tickets,
        PreviewSocketReplicas replicas)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableUpDownCounter("sentryvibe.preview.targets.cached", () => targets.CachedCount, "{entry}",
            "Preview lookups held in the relay's cache (bounded by Broker:PreviewTargetCacheSize).");
        meter.CreateObservableCounter("sentryvibe.preview.lookups", () => targets.Lookups, "{query}",
            "Preview lookups that reached the database (labels not shaped like a preview id never do).");
        meter.CreateObservableUpDownCounter("sentryvibe.preview.channels.open", () => relay.OpenChannels, "{channel}",
            "Preview connections (a runner socket each) open through this replica.");
        meter.CreateObservableUpDownCounter("sentryvibe.preview.spares.idle", () => tickets.SparesIdle, "{socket}",
            "Spare preview sockets runners hold open to this replica for their next preview connections.");
        meter.CreateObservableCounter("sentryvibe.preview.spares.taken", () => tickets.SparesTaken, "{socket}",
            "Preview connections that took a spare socket (no round trip to the runner before the request).");
        meter.CreateObservableCounter("sentryvibe.preview.tickets.issued", () => tickets.Issued, "{ticket}",
            "Preview connections that asked the runner to dial a socket with a ticket.");
        meter.CreateObservableCounter("sentryvibe.preview.replica_reads", () => replicas.Reads, "{query}",
            "Reads of the other replicas' addresses for preview sockets dialled at the wrong one (at most one a second).");
    }
}
