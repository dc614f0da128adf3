using System.Diagnostics.Metrics;
using SentryVibe.Broker.Previews;

namespace SentryVibe.Broker.Link;

/// <summary>
/// The link's refusals as metrics (meter <c>SentryVibe.Broker</c>, beside the relay's <see cref="PreviewMetrics"/>):
/// calls refused for going over a runner's rate. A runner spaces its calls by the rate its Hello reply states, so
/// anything above zero is a runner that ignores it (or a broker whose setting changed under it). See docs/operations.md.
/// </summary>
public sealed class LinkMetrics
{
    private long _rateLimited;

    public LinkMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(PreviewMetrics.MeterName);
        meter.CreateObservableCounter("sentryvibe.link.rate_limited", () => Interlocked.Read(ref _rateLimited), "{call}",
            "PublishEvents and Heartbeat calls refused with -31003 (rate limited), and heartbeat messages left unanswered over the same limit.");
    }

    public void RateLimited() => Interlocked.Increment(ref _rateLimited);
}
