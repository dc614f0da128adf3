using System.Diagnostics;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class CommandDeliveryTests(BrokerEnvironment environment) : IClassFixture<BrokerEnvironment>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;
    private readonly BrokerProcess _broker = environment.Broker;

    [Fact]
    public async Task A_command_queued_while_the_runner_is_offline_runs_exactly_once_after_it_connects()
    {
        var id = await Database.QueueCommandAsync(_db, "offline-runner", new StartDevServer(Guid.NewGuid()));
        Assert.Equal(CommandStatuses.Queued, await Database.CommandStatusAsync(_db, id));

        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "offline-runner");

        await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, id) == CommandStatuses.Acked, Wait, "the command to be acked");
        Assert.Equal(1, runner.Handler.CountOf(id));
        Assert.Equal(_broker.Id, await Database.ScalarAsync<string>(_db, """SELECT "DeliveredBy" FROM commands WHERE "Id" = @id""", ("id", id)));
    }

    [Fact]
    public async Task The_same_command_delivered_again_is_acked_as_a_duplicate_and_not_run_twice()
    {
        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "replay-runner");
        await runner.WaitConnectedAsync();
        var id = await Database.QueueCommandAsync(_db, "replay-runner", new StopDevServer(Guid.NewGuid()));
        await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, id) == CommandStatuses.Acked, Wait, "the first delivery's ack");

        // As if the ack had been lost: the row goes back to the queue and is delivered again.
        await Database.ExecuteAsync(_db, """UPDATE commands SET "Status" = 'queued' WHERE "Id" = @id; SELECT pg_notify('sentryvibe_commands', 'replay-runner')""", ("id", id));
        await Eventually.WaitAsync(async () => await Database.ScalarAsync<int>(_db, """SELECT "Attempts" FROM commands WHERE "Id" = @id AND "Status" = 'acked'""", ("id", id)) == 2,
            Wait, "the second delivery's ack");

        Assert.Equal(1, runner.Handler.CountOf(id));
    }

    [Fact]
    public async Task A_command_is_not_run_again_after_the_runner_restarts_because_its_journal_persists()
    {
        var home = Paths.TempDirectory("journal");
        Guid id;
        await using (var first = await InProcessRunner.StartAsync(_broker.LinkUri, "restart-runner", home))
        {
            id = await Database.QueueCommandAsync(_db, "restart-runner", new CancelBuild(Guid.NewGuid()));
            await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, id) == CommandStatuses.Acked, Wait, "the ack before the restart");
            Assert.Equal(1, first.Handler.CountOf(id));
        }

        await Database.ExecuteAsync(_db, """UPDATE commands SET "Status" = 'delivered', "DeliveredAt" = now() - interval '1 minute' WHERE "Id" = @id""", ("id", id));
        await using var second = await InProcessRunner.StartAsync(_broker.LinkUri, "restart-runner", home);
        await Eventually.WaitAsync(async () => await Database.ScalarAsync<int>(_db, """SELECT "Attempts" FROM commands WHERE "Id" = @id AND "Status" = 'acked'""", ("id", id)) == 2,
            Wait, "the redelivery after the restart to be acked");

        Assert.Equal(0, second.Handler.CountOf(id));
    }

    [Fact]
    public async Task Commands_are_delivered_in_the_order_they_were_created_and_results_complete_them()
    {
        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "order-runner");
        runner.Handler.ReportCompletion = true;
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++) ids.Add(await Database.QueueCommandAsync(_db, "order-runner", new StartDevServer(Guid.NewGuid())));

        await Eventually.WaitAsync(async () => await Database.ScalarAsync<long>(_db,
            """SELECT count(*) FROM commands WHERE "RunnerId" = 'order-runner' AND "Status" = 'completed'""") == 5, Wait, "all five to complete");
        Assert.Equal(ids, runner.Handler.Executed.Select(e => e.Id).ToList());
    }

    [Fact]
    public async Task An_expired_command_is_not_delivered()
    {
        var id = await Database.QueueCommandAsync(_db, "expiry-runner", new StartDevServer(Guid.NewGuid()));
        await Database.ExecuteAsync(_db, """UPDATE commands SET "ExpiresAt" = now() - interval '1 second' WHERE "Id" = @id""", ("id", id));
        var fresh = await Database.QueueCommandAsync(_db, "expiry-runner", new StartDevServer(Guid.NewGuid()));

        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "expiry-runner");
        await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, fresh) == CommandStatuses.Acked, Wait, "the fresh command's ack");

        Assert.Equal(CommandStatuses.Queued, await Database.CommandStatusAsync(_db, id));
        Assert.Equal(0, runner.Handler.CountOf(id));
    }

    [Fact]
    public async Task The_runner_continues_the_trace_of_the_request_that_queued_the_command()
    {
        var trace = ActivityTraceId.CreateRandom();
        var traceParent = $"00-{trace}-{ActivitySpanId.CreateRandom()}-01";
        await using var runner = await InProcessRunner.StartAsync(_broker.LinkUri, "trace-runner");
        var id = await Database.QueueCommandAsync(_db, "trace-runner", new StartDevServer(Guid.NewGuid()), traceParent);

        await Eventually.WaitAsync(() => runner.Handler.CountOf(id) == 1, Wait, "the command to run");

        var received = runner.Handler.Executed.Single(e => e.Id == id).TraceParent;
        Assert.NotNull(received);
        Assert.True(ActivityContext.TryParse(received, null, out var context));
        Assert.Equal(trace, context.TraceId);
    }
}
