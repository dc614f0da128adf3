using System.Diagnostics.Metrics;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The relay's bounded state as metrics (meter <c>SentryVibe.Broker</c>, exported by the service defaults): how full the
/// preview lookup cache is, how many lookups reached the database, how many preview channels are open. See docs/operations.md.
/// </summary>
public sealed class PreviewMetrics
{
    public const string MeterName = "SentryVibe.Broker";

    public PreviewMetrics(IMeterFactory meters, PreviewTargetStore targets, PreviewRelay relay)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableUpDownCounter("sentryvibe.preview.targets.cached", () => targets.CachedCount, "{entry}",
            "Preview lookups held in the relay's cache (bounded by Broker:PreviewTargetCacheSize).");
        meter.CreateObservableCounter("sentryvibe.preview.lookups", () => targets.Lookups, "{query}",
            "Preview lookups that reached the database (labels not shaped like a preview id never do).");
        meter.CreateObservableUpDownCounter("sentryvibe.preview.channels.open", () => relay.OpenChannels, "{channel}",
            "Preview connections (a runner socket each) open through this replica.");
    }
}
