using SentryVibe.Protocol;
using SentryVibe.Runner.Link;
using Xunit;

namespace SentryVibe.Link.Tests;

public sealed class OutboxTests
{
    [Fact]
    public async Task Unacked_events_and_the_seq_counter_survive_a_restart_and_a_torn_tail_is_cut_off()
    {
        var dir = Paths.TempDirectory("outbox");
        await using (var outbox = new EventOutbox(dir))
        {
            for (var i = 0; i < 10; i++) await outbox.PublishAsync(null, new BuildLog($"line {i}"));
            await outbox.AcknowledgeAsync(4);
        }
        var segment = Directory.GetFiles(dir, "*.seg").Single();
        await File.AppendAllTextAsync(segment, "\u0050\0\0\0garbage-of-a-crash");

        await using var reopened = new EventOutbox(dir);

        Assert.Equal(10, reopened.LastSeq);
        Assert.Equal(4, reopened.AckedSeq);
        Assert.Equal([5L, 6, 7, 8, 9, 10], reopened.PeekBatch(100).Select(e => e.Seq));
        await reopened.PublishAsync(null, new BuildLog("after restart"));
        Assert.Equal(11, reopened.PeekBatch(100)[^1].Seq);
    }

    [Fact]
    public async Task Acked_segments_are_deleted()
    {
        var dir = Paths.TempDirectory("outbox");
        await using var outbox = new EventOutbox(dir);
        var big = new string('x', 64 * 1024);
        for (var i = 0; i < 100; i++) await outbox.PublishAsync(null, new BuildLog(big));
        Assert.True(Directory.GetFiles(dir, "*.seg").Length > 1);

        await outbox.AcknowledgeAsync(100);

        Assert.Single(Directory.GetFiles(dir, "*.seg"));
        Assert.Equal(0, outbox.PendingCount);
    }

    [Fact]
    public async Task A_broker_that_knows_more_than_the_outbox_gets_the_unsent_events_renumbered_above_its_seq()
    {
        await using var outbox = new EventOutbox(Paths.TempDirectory("outbox"));
        await outbox.PublishAsync(null, new BuildLog("a"));
        await outbox.PublishAsync(null, new BuildLog("b"));

        await outbox.SyncWithBrokerAsync(500);

        Assert.Equal([501L, 502], outbox.PeekBatch(10).Select(e => e.Seq));
        await outbox.PublishAsync(null, new BuildLog("c"));
        Assert.Equal(503, outbox.LastSeq);
    }

    [Fact]
    public async Task Concurrent_publishers_get_distinct_consecutive_seqs()
    {
        await using var outbox = new EventOutbox(Paths.TempDirectory("outbox"));
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 1000; i++) await outbox.PublishAsync(null, new BuildLog($"{t}:{i}"));
        })));

        Assert.Equal(Enumerable.Range(1, 8000).Select(i => (long)i), outbox.PeekBatch(10_000).Select(e => e.Seq));
    }

    [Fact]
    public async Task An_event_too_big_for_the_link_is_refused_without_using_up_a_seq_and_batches_stay_under_the_byte_cap()
    {
        await using var outbox = new EventOutbox(Paths.TempDirectory("outbox"));
        await outbox.PublishAsync(null, new BuildLog("before"));

        await Assert.ThrowsAsync<ArgumentException>(async () => await outbox.PublishAsync(null, new AgentMessage(new string('x', EventOutbox.MaxEventBytes + 1))));
        for (var i = 0; i < 10; i++) await outbox.PublishAsync(null, new AgentMessage(new string('y', 300 * 1024)));

        Assert.Equal(11, outbox.LastSeq);
        var batch = outbox.PeekBatch(1000, maxBytes: 1024 * 1024);
        Assert.Equal([1L, 2, 3, 4], batch.Select(e => e.Seq));
    }

    [Fact]
    public void The_command_journal_remembers_ids_across_restarts()
    {
        var dir = Paths.TempDirectory("journal");
        var id = Guid.NewGuid();
        using (var journal = new CommandJournal(dir))
        {
            Assert.True(journal.TryRecord(id));
            Assert.False(journal.TryRecord(id));
        }

        using var reopened = new CommandJournal(dir);
        Assert.False(reopened.TryRecord(id));
        Assert.True(reopened.TryRecord(Guid.NewGuid()));
    }
}
