// Sentry.AspNetCore traces HTTP requests; the work that matters most here happens outside them (the broker delivering
// a command, the runner executing it). This turns the activities of the SentryVibe.* sources — the same ones
// OpenTelemetry exports — into Sentry transactions and spans with the same trace and span ids, so a command shows up in
// Sentry as one trace across Broker and Runner. Only registered when SENTRY_DSN is set.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Sentry;

namespace Microsoft.Extensions.Hosting;

internal sealed class SentryActivityBridge : IHostedService, IDisposable
{
    public const string SourcePrefix = "SentryVibe.";

    private readonly ActivityListener _listener;
    private readonly ConditionalWeakTable<Activity, ISpan> _spans = new();

    public SentryActivityBridge()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith(SourcePrefix, StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = Started,
            ActivityStopped = Stopped,
        };
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ActivitySource.AddActivityListener(_listener);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Started(Activity activity)
    {
        if (!SentrySdk.IsEnabled) return;
        ISpan span;
        if (activity.Parent is { } parent && _spans.TryGetValue(parent, out var parentSpan))
        {
            span = parentSpan.StartChild(activity.OperationName, activity.DisplayName);
        }
        else
        {
            var hasParent = activity.ParentSpanId != default;
            span = SentrySdk.StartTransaction(new TransactionContext(
                name: activity.DisplayName,
                operation: activity.OperationName,
                spanId: new SpanId(activity.SpanId.ToHexString()),
                parentSpanId: hasParent ? new SpanId(activity.ParentSpanId.ToHexString()) : null,
                traceId: new SentryId(Guid.ParseExact(activity.TraceId.ToHexString(), "N"))));
        }
        _spans.AddOrUpdate(activity, span);
    }

    private void Stopped(Activity activity)
    {
        if (!_spans.TryGetValue(activity, out var span)) return;
        _spans.Remove(activity);
        foreach (var (key, value) in activity.TagObjects)
        {
            span.SetData(key, value);
        }
        span.Finish(activity.Status == ActivityStatusCode.Error ? SpanStatus.InternalError : SpanStatus.Ok);
    }

    public void Dispose() => _listener.Dispose();
}
