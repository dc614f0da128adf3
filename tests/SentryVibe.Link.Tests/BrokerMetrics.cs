using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace SentryVibe.Link.Tests;

/// <summary>
/// Reads a broker process's own metrics (meter <c>SentryVibe.Broker</c>) from outside it over EventPipe, the way
/// dotnet-counters does: every sample the runtime publishes is kept, so a test can assert a bound held throughout.
/// </summary>
public sealed class BrokerMetrics : IAsyncDisposable
{
    private const string MetricsProvider = "System.Diagnostics.Metrics";
    private readonly EventPipeSession _session;
    private readonly EventPipeEventSource _source;
    private readonly Task _processing;
    private readonly Dictionary<string, List<double>> _samples = [];

    private BrokerMetrics(EventPipeSession session)
    {
        _session = session;
        _source = new EventPipeEventSource(session.EventStream);
        _source.Dynamic.All += OnEvent;
        _processing = Task.Run(() => _source.Process());
    }

    public static BrokerMetrics Start(int processId, string meter = "SentryVibe.Broker")
    {
        var provider = new EventPipeProvider(MetricsProvider, EventLevel.Informational, keywords: 0x3, // messages, time series values
            arguments: new Dictionary<string, string>
            {
                ["SessionId"] = Guid.NewGuid().ToString("N"),
                ["Metrics"] = meter,
                ["RefreshInterval"] = "0.5",
                ["MaxTimeSeries"] = "100",
                ["MaxHistograms"] = "10",
            });
        var session = new DiagnosticsClient(processId).StartEventPipeSession([provider], requestRundown: false);
        return new BrokerMetrics(session);
    }

    /// <summary>Every value published for <paramref name="instrument"/> so far, oldest first.</summary>
    public IReadOnlyList<double> Samples(string instrument)
    {
        lock (_samples) return _samples.TryGetValue(instrument, out var list) ? [.. list] : [];
    }

    public double? Latest(string instrument) => Samples(instrument) is { Count: > 0 } list ? list[^1] : null;

    /// <summary>Waits for a sample published after this call that satisfies <paramref name="condition"/>.</summary>
    public Task WaitForAsync(string instrument, Func<double, bool> condition, TimeSpan timeout, string what)
    {
        var seen = Samples(instrument).Count;
        return SentryVibe.Testing.Eventually.WaitAsync(() => Samples(instrument).Skip(seen).Any(condition), timeout, what);
    }

    private void OnEvent(TraceEvent e)
    {
        if (e.ProviderName != MetricsProvider) return;
        if (e.EventName is not ("UpDownCounterRateValuePublished" or "CounterRateValuePublished" or "GaugeValuePublished")) return;
        if (e.PayloadByName("instrumentName") is not string name) return;
        var text = (e.PayloadByName("value") ?? e.PayloadByName("lastValue")) as string;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return;
        lock (_samples)
        {
            if (!_samples.TryGetValue(name, out var list)) _samples[name] = list = [];
            list.Add(value);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _session.StopAsync(CancellationToken.None); } catch (Exception) { /* the broker may be gone already */ }
        try { await _processing.WaitAsync(TimeSpan.FromSeconds(10)); } catch (Exception) { }
        _source.Dispose();
        _session.Dispose();
    }
}
