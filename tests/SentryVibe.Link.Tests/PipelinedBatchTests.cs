// A runner may send its next event batch before the one before is answered (link protocol: BatchesInFlight). The broker
// takes them in the order they were sent, and a batch that fails makes the ones sent behind it fail too: otherwise the
// later batch's committed seq would pass events that were never stored, and the runner would drop them from its outbox.
using SentryVibe.Protocol;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class PipelinedBatchTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string RunnerId = "pipelining-runner";
    private string _db = "";
    private BrokerProcess _broker = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db);
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_batch_sent_behind_one_that_failed_is_refused_until_the_failed_one_comes_again()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        var reply = await link.HelloAsync(RunnerId);
        Assert.Equal(LinkProtocol.BatchesInFlight, reply.BatchesInFlight);

        for (var round = 0; round < 20; round++)
        {
            var first = round * 4 + 1;
            // The first batch fails (a seq twice is a bad request); the second goes out before its answer.
            var failing = link.Broker.PublishEventsAsync(Batch(first, first + 1, first + 1), CancellationToken.None);
            var behind = link.Broker.PublishEventsAsync(Batch(first + 2, first + 3), CancellationToken.None);

            Assert.Equal(LinkErrorCodes.InvalidRequest, (await Assert.ThrowsAsync<RemoteInvocationException>(() => failing)).ErrorCode);
            var refused = await Assert.ThrowsAsync<RemoteInvocationException>(() => behind);
            Assert.Equal(LinkErrorCodes.Unavailable, refused.ErrorCode);
            Assert.Contains($"from seq {first}", refused.Message);
            Assert.Equal(first - 1, await CommittedSeqAsync());

            // Sent again from the failed batch, both are stored, in order, the two calls again in flight together.
            var again = link.Broker.PublishEventsAsync(Batch(first, first + 1), CancellationToken.None);
            var next = link.Broker.PublishEventsAsync(Batch(first + 2, first + 3), CancellationToken.None);
            Assert.Equal(first + 1, (await again).CommittedThroughSeq);
            Assert.Equal(first + 3, (await next).CommittedThroughSeq);
        }
        var seqs = await Database.ScalarAsync<long[]>(_db, $"""SELECT array_agg("Seq" ORDER BY "Id") FROM events WHERE "RunnerId" = '{RunnerId}'""");
        Assert.Equal(Enumerable.Range(1, 80).Select(i => (long)i), seqs);
    }

    [Fact]
    public async Task A_runner_flooding_publish_calls_is_refused_beyond_the_batches_in_flight_and_keeps_its_link()
    {
        // A rogue runner: 60 calls of 1,000 events each at once. Queued behind one another, each would sit in the
        // broker's memory until its turn; beyond BatchesInFlight they are refused at once instead.
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        await link.HelloAsync(RunnerId);
        var calls = Enumerable.Range(0, 60)
            .Select(b => link.Broker.PublishEventsAsync(Batch([.. Enumerable.Range(b * 1000 + 1, 1000).Select(i => (long)i)]), CancellationToken.None))
            .ToList();
        var outcomes = await Task.WhenAll(calls.Select(async call =>
        {
            try { await call; return ""; }
            catch (RemoteInvocationException e) { return $"{e.ErrorCode} {e.Message}"; }
        }));

        var refused = outcomes.Count(o => o.StartsWith($"{LinkErrorCodes.RateLimited} At most {LinkProtocol.BatchesInFlight} PublishEvents calls", StringComparison.Ordinal));
        // The calls reach the broker a millisecond or so apart and a batch takes it tens to store, so most find no room
        // (37 of 60 here); without the limit none is refused (60 calls are well within the rate's burst of 200).
        Assert.True(refused >= 10, $"only {refused} of 60 refused: {string.Join(" | ", outcomes.Distinct())}");
        Assert.Contains("", outcomes);

        // The link stays, and a well-behaved call goes through.
        var ack = await link.Broker.PublishEventsAsync(Batch(1), CancellationToken.None);
        Assert.True(ack.CommittedThroughSeq >= 1);
    }

    private Task<long> CommittedSeqAsync() =>
        Database.ScalarAsync<long>(_db, $"""SELECT "CommittedSeq" FROM runners WHERE "Id" = '{RunnerId}'""");

    private static EventBatch Batch(params long[] seqs) =>
        new([.. seqs.Select(seq => new RunnerEvent(seq, null, DateTimeOffset.UtcNow, new BuildLog($"line {seq}")))]);
}
