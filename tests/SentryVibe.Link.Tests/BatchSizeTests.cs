// A runner puts at most as many events in one PublishEvents call as its broker's Hello reply states: a broker that takes
// fewer than the runner would send (an older one took 1,000, fewer than LinkProtocol.EventsPerBatch) is never sent a
// batch it refuses, which would leave those events in the runner's outbox for good.
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class BatchSizeTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const int Limit = 100;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private string _db = "";
    private BrokerProcess _broker = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db, settings: new Dictionary<string, string>
        {
            ["Broker__MaxEventsPerBatch"] = Limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_runner_keeps_to_the_batch_size_its_broker_states_and_every_event_is_stored()
    {
        await using (var link = await RawLink.ConnectAsync(_broker.LinkUri))
        {
            Assert.Equal(Limit, (await link.HelloAsync("asking-runner")).EventsPerBatch);
        }

        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "batching-runner");
        await runner.WaitConnectedAsync();
        // Published as fast as the outbox takes them: many more than the limit wait for each call.
        const int events = 2000;
        for (var i = 1; i <= events; i++) await runner.Events.PublishAsync(null, new BuildLog($"line {i}"));
        await Eventually.WaitAsync(() => runner.Outbox.AckedSeq == events, Wait, "every event to be committed");

        var stored = await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM events WHERE "RunnerId" = 'batching-runner'""");
        Assert.Equal(events, stored);
    }
}
