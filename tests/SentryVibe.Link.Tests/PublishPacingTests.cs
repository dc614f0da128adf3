// A runner whose events arrive faster than the broker's PublishEvents rate (a chatty build log) spaces its calls by the
// rate the Hello reply states and sends what arrived meanwhile together: the broker never refuses it for its rate, which
// used to cost a retry backoff of half a second or more per refusal (publish → visible p99 of 1.2 s at 500 events/s).
// And it puts at most as many events in a call as the reply states: a broker that takes fewer than the runner would send
// (an older one took 1,000, fewer than LinkProtocol.EventsPerBatch) is never sent a batch it refuses, which would leave
// those events in the runner's outbox for good.
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class PublishPacingTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const int CallsPerSecond = 2;
    private const int EventsPerBatch = 100;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private string _db = "";
    private BrokerProcess _broker = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db, settings: new Dictionary<string, string>
        {
            ["Broker__PublishCallsPerSecond"] = CallsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker__MaxEventsPerBatch"] = EventsPerBatch.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Events_arriving_faster_than_the_call_rate_share_calls_and_none_is_refused_for_its_rate()
    {
        await using var metrics = BrokerMetrics.Start(_broker.ProcessId);
        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "chatty-runner");
        await runner.WaitConnectedAsync();

        // The first line alone, so the broker's intake is warm and no later line waits behind a slow first call.
        await runner.Events.PublishAsync(null, new BuildLog("line 0"));
        await Eventually.WaitAsync(() => runner.Outbox.AckedSeq == 1, Wait, "the first line to be committed");

        // Then sixty lines a few milliseconds apart: sent a call each they would spend the burst of 4 at once and be
        // refused from there on.
        const int lines = 61;
        for (var i = 1; i < lines; i++)
        {
            await runner.Events.PublishAsync(null, new BuildLog($"line {i}"));
            await Task.Delay(5); // the pace of the log being written, not a wait for anything
        }
        await Eventually.WaitAsync(() => runner.Outbox.AckedSeq == lines, Wait, "every line to be committed");

        await metrics.WaitForAsync("sentryvibe.link.rate_limited", _ => true, Wait, "a sample of the rate-limit counter after the lines");
        Assert.All(metrics.Samples("sentryvibe.link.rate_limited"), refused => Assert.Equal(0, refused));
        var stored = await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM events WHERE "RunnerId" = 'chatty-runner'""");
        Assert.Equal(lines, stored);
    }

    [Fact]
    public async Task A_runner_keeps_to_the_batch_size_its_broker_states_and_every_event_is_stored()
    {
        await using (var link = await RawLink.ConnectAsync(_broker.LinkUri))
        {
            Assert.Equal(EventsPerBatch, (await link.HelloAsync("asking-runner")).EventsPerBatch);
        }

        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "batching-runner");
        await runner.WaitConnectedAsync();
        // Published as fast as the outbox takes them: many more than the limit wait for each call.
        const int events = 1000;
        for (var i = 1; i <= events; i++) await runner.Events.PublishAsync(null, new BuildLog($"line {i}"));
        await Eventually.WaitAsync(() => runner.Outbox.AckedSeq == events, Wait, "every event to be committed");

        var stored = await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM events WHERE "RunnerId" = 'batching-runner'""");
        Assert.Equal(events, stored);
    }
}
