using System.Diagnostics;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class EventIntakeTests(BrokerEnvironment environment, ITestOutputHelper output) : IClassFixture<BrokerEnvironment>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;

    [Fact]
    public async Task A_replayed_batch_is_stored_and_projected_once()
    {
        var project = Guid.NewGuid();
        await Database.ExecuteAsync(_db, """
            INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "Agent", "Todos", "DevServer", "PreviewId", "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId", "RunnerId")
            VALUES (@id, @slug, 'Todo', 'Create a todo app', 'pending', 'vite-react', 'none', '[]', '{}', @preview, 0, 0, now(), now(), 0, 'replay-intake')
            """, ("id", project), ("slug", "todo-" + project.ToString("N")[..6]), ("preview", project.ToString("N")));
        await using var link = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        await link.HelloAsync("replay-intake");
        var now = DateTimeOffset.UtcNow;
        var batch = new EventBatch(
        [
            new RunnerEvent(1, project, now, new BuildStarted("Create a todo app", "vite-react", "none")),
            new RunnerEvent(2, project, now, new CheckpointCreated("abc123", "Turn 1", now, 1)),
            new RunnerEvent(3, project, now, new BuildCompleted(1, 1000, 0.25m, 10, 20)),
        ]);

        var first = await link.Broker.PublishEventsAsync(batch, CancellationToken.None);
        var again = await link.Broker.PublishEventsAsync(batch, CancellationToken.None);

        Assert.Equal(3, first.CommittedThroughSeq);
        Assert.Equal(3, again.CommittedThroughSeq);
        Assert.Equal(3L, await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM events WHERE "RunnerId" = 'replay-intake'"""));
        Assert.Equal(ProjectStatuses.Ready, await Database.ScalarAsync<string>(_db, """SELECT "Status" FROM projects WHERE "Id" = @id""", ("id", project)));
        Assert.Equal(0.25m, await Database.ScalarAsync<decimal>(_db, """SELECT "CostUsd" FROM projects WHERE "Id" = @id""", ("id", project)));
        Assert.Equal("Turn 1", await Database.ScalarAsync<string>(_db, """SELECT "Message" FROM checkpoints WHERE "ProjectId" = @id""", ("id", project)));
    }

    [Fact]
    public async Task A_batch_folds_per_project_the_cursor_of_log_only_projects_and_every_event_of_the_others()
    {
        var (quiet, busy) = (Guid.NewGuid(), Guid.NewGuid());
        foreach (var project in new[] { quiet, busy })
        {
            await Database.ExecuteAsync(_db, """
                INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "Agent", "Todos", "DevServer", "PreviewId", "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId", "RunnerId")
                VALUES (@id, @slug, 'Todo', 'Create a todo app', 'building', 'vite-react', 'none', '[]', '{}', @preview, 0, 0, now(), now(), 0, 'fold-intake')
                """, ("id", project), ("slug", "fold-" + project.ToString("N")[..8]), ("preview", project.ToString("N")));
        }
        await using var link = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        await link.HelloAsync("fold-intake");
        var start = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var batch = new EventBatch(
        [
            new RunnerEvent(1, quiet, start, new BuildLog("installing")),
            new RunnerEvent(2, busy, start.AddSeconds(1), new BuildLog("installing")),
            new RunnerEvent(3, busy, start.AddSeconds(2), new BuildFailed("npm install failed")),
            new RunnerEvent(4, quiet, start.AddSeconds(3), new AgentMessage("Writing App.tsx")),
            new RunnerEvent(5, quiet, start.AddSeconds(4), new CheckpointCreated("c0ffee", "Turn 1", start, 1)),
            new RunnerEvent(6, busy, start.AddSeconds(5), new BuildLog("giving up")),
        ]);

        await link.Broker.PublishEventsAsync(batch, CancellationToken.None);
        await link.Broker.PublishEventsAsync(batch, CancellationToken.None); // a replay moves nothing

        foreach (var (project, status, last) in new[] { (quiet, ProjectStatuses.Building, start.AddSeconds(4)), (busy, ProjectStatuses.Failed, start.AddSeconds(5)) })
        {
            var newest = await Database.ScalarAsync<long>(_db, """SELECT max("Id") FROM events WHERE "ProjectId" = @id""", ("id", project));
            Assert.Equal(newest, await Database.ScalarAsync<long>(_db, """SELECT "LastEventId" FROM projects WHERE "Id" = @id""", ("id", project)));
            Assert.Equal(last.UtcDateTime, await Database.ScalarAsync<DateTime>(_db, """SELECT "UpdatedAt" FROM projects WHERE "Id" = @id""", ("id", project)));
            Assert.Equal(status, await Database.ScalarAsync<string>(_db, """SELECT "Status" FROM projects WHERE "Id" = @id""", ("id", project)));
        }
        Assert.Equal("npm install failed", await Database.ScalarAsync<string>(_db, """SELECT "StatusReason" FROM projects WHERE "Id" = @id""", ("id", busy)));
        Assert.Equal("Turn 1", await Database.ScalarAsync<string>(_db, """SELECT "Message" FROM checkpoints WHERE "ProjectId" = @id""", ("id", quiet)));
    }

    [Fact]
    public async Task Todos_dev_server_and_metadata_are_folded_into_the_row_as_Web_reads_them_and_Web_s_columns_are_left_alone()
    {
        var project = Guid.NewGuid();
        var requested = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        await Database.ExecuteAsync(_db, """
            INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "Agent", "Todos", "DevServer", "PreviewId", "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId", "RunnerId", "DeleteRequestedAt")
            VALUES (@id, @slug, 'Todo', 'Create a todo app', 'pending', 'vite-react', 'none', '[]', '{}', @preview, 1.5, 0, now(), now(), 0, 'row-intake', @requested)
            """, ("id", project), ("slug", "row-" + project.ToString("N")[..8]), ("preview", project.ToString("N")), ("requested", requested));
        await using var link = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        await link.HelloAsync("row-intake");
        var at = DateTimeOffset.UtcNow;
        await link.Broker.PublishEventsAsync(new EventBatch(
        [
            new RunnerEvent(1, project, at, new BuildStarted("Create a todo app", "vite-react", "none", Turn: 2)),
            new RunnerEvent(2, project, at, new TodosUpdated([new TodoItem("Write App.tsx", "in_progress", "Writing App.tsx")])),
            new RunnerEvent(3, project, at, new ProjectMetadata("vite", "npm run dev", null, Path: "todo-app")),
            new RunnerEvent(4, project, at, new DevServerStarting("npm run dev", 5173, "installing")),
            new RunnerEvent(5, project, at, new DevServerLog("VITE ready")),
            new RunnerEvent(6, project, at, new BuildCompleted(1, 1000, 0.25m, 10, 20, SessionId: "session-1")),
        ]), CancellationToken.None);

        var todos = JsonColumn.Read<List<TodoItem>>((await Database.ScalarAsync<string>(_db, """SELECT "Todos"::text FROM projects WHERE "Id" = @id""", ("id", project)))!);
        Assert.Equal([new TodoItem("Write App.tsx", "in_progress", "Writing App.tsx")], todos);
        var devServer = JsonColumn.Read<DevServerState>(
            (await Database.ScalarAsync<string>(_db, """SELECT "DevServer"::text FROM projects WHERE "Id" = @id""", ("id", project)))!);
        Assert.Equal((DevServerStatuses.Starting, 5173, "installing"), (devServer.Status, devServer.Port, devServer.Reason));
        Assert.Equal(["VITE ready"], devServer.LastLines);
        Assert.Equal(
            (ProjectStatuses.Ready, 2, "vite", "npm run dev", "todo-app", "session-1", 1.75m),
            (await Database.ScalarAsync<string>(_db, """SELECT "Status" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<int>(_db, """SELECT "Turns" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<string>(_db, """SELECT "Framework" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<string>(_db, """SELECT "RunCommand" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<string>(_db, """SELECT "Path" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<string>(_db, """SELECT "SessionId" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<decimal>(_db, """SELECT "CostUsd" FROM projects WHERE "Id" = @id""", ("id", project))));
        Assert.Equal(("Todo", "Create a todo app", requested.UtcDateTime),
            (await Database.ScalarAsync<string>(_db, """SELECT "Name" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<string>(_db, """SELECT "Prompt" FROM projects WHERE "Id" = @id""", ("id", project)),
             await Database.ScalarAsync<DateTime>(_db, """SELECT "DeleteRequestedAt" FROM projects WHERE "Id" = @id""", ("id", project))));

        // Its SQL is its own: a broker that folded a batch into a row has still not loaded EF Core, which costs it memory.
        var mapped = await File.ReadAllTextAsync($"/proc/{environment.Broker.ProcessId}/maps");
        Assert.DoesNotContain("Microsoft.EntityFrameworkCore", mapped);
    }

    [Fact]
    public void Every_column_of_a_project_is_either_folded_by_the_intake_or_left_to_Web()
    {
        var properties = typeof(Project).GetProperties().Select(p => p.Name).Order();
        Assert.Equal(properties, ProjectRows.Projected.Concat(ProjectRows.NotProjected).Order());
        Assert.Empty(ProjectRows.Projected.Intersect(ProjectRows.NotProjected));
    }

    [Fact]
    public async Task Hello_reports_what_is_already_committed_so_the_runner_resends_only_the_rest()
    {
        await using var link = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        await link.HelloAsync("resume-intake");
        await link.Broker.PublishEventsAsync(new EventBatch([.. Enumerable.Range(1, 7).Select(i => new RunnerEvent(i, null, DateTimeOffset.UtcNow, new BuildLog($"l{i}")))]), CancellationToken.None);

        await using var again = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        var reply = await again.HelloAsync("resume-intake");

        Assert.Equal(7, reply.CommittedThroughSeq);
    }

    [Fact]
    public async Task Events_survive_killing_the_broker_then_postgres_then_the_runner_in_the_middle_of_a_10000_event_stream()
    {
        const long total = 10_000;
        var root = Paths.TempDirectory("kill");
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        await using var cluster = new RestartablePostgres(binaries, Path.Combine(root, "pg"));
        await cluster.StartAsync();
        var db = await cluster.CreateDatabaseAsync("killtest");
        await Database.MigrateAsync(db);
        var brokerPort = PostgresCluster.FreePort();
        var home = Path.Combine(root, "runner");
        var (project, _) = await Projects.CreateAsync(db, "killer"); // a runner reports only on projects assigned to it
        async Task<long> Stored() => await Database.ScalarAsync<long>(db, """SELECT count(*) FROM events WHERE "RunnerId" = 'killer'""");
        async Task StoredAtLeast(long n, string what) =>
            await Eventually.WaitAsync(async () => await Stored() >= n, TimeSpan.FromSeconds(60), what, TimeSpan.FromMilliseconds(200));
        var clock = Stopwatch.StartNew();
        void Log(string step) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:0.0}s {step}");

        var broker = await BrokerProcess.StartAsync(db, brokerPort, "kill-broker");
        var runner = RunnerProcess.Start(broker.LinkUri, "killer", home, total, rate: 300, project);
        try
        {
            await StoredAtLeast(1000, "1,000 events before killing the broker");
            broker.Kill();
            Log($"broker killed at {runner.Emitted} emitted");
            var emitted = runner.Emitted;
            await Eventually.WaitAsync(() => runner.Emitted >= emitted + 300, Wait, "the runner to keep emitting into its outbox");
            await broker.DisposeAsync();
            broker = await BrokerProcess.StartAsync(db, brokerPort, "kill-broker-2");
            Log("broker restarted");

            await StoredAtLeast(2500, "2,500 events before killing Postgres");
            cluster.Kill();
            Log($"postgres killed at {runner.Emitted} emitted");
            emitted = runner.Emitted;
            await Eventually.WaitAsync(() => runner.Emitted >= emitted + 300, Wait, "the runner to keep emitting while Postgres is down");
            await cluster.StartAsync();
            Log("postgres restarted");

            await StoredAtLeast(4000, "4,000 events before killing the runner");
            Assert.True(runner.Emitted < total, "the runner should still be emitting when it is killed");
            runner.Kill();
            Log($"runner killed at {runner.Emitted} emitted");
            await runner.DisposeAsync();
            runner = RunnerProcess.Start(broker.LinkUri, "killer", home, total, rate: 300, project);
            Log("runner restarted");

            await Eventually.WaitAsync(async () => await Stored() >= total, TimeSpan.FromSeconds(90), "all 10,000 events", TimeSpan.FromMilliseconds(200));
            Log("all stored");

            Assert.Equal(total, await Stored());
            Assert.Equal(total, await Database.ScalarAsync<long>(db, """SELECT count(DISTINCT "Seq") FROM events WHERE "RunnerId" = 'killer'"""));
            Assert.Equal(1L, await Database.ScalarAsync<long>(db, """SELECT min("Seq") FROM events WHERE "RunnerId" = 'killer'"""));
            Assert.Equal(total, await Database.ScalarAsync<long>(db, """SELECT max("Seq") FROM events WHERE "RunnerId" = 'killer'"""));
            Assert.Equal(total, await Database.ScalarAsync<long>(db, """SELECT "CommittedSeq" FROM runners WHERE "Id" = 'killer'"""));
        }
        catch
        {
            output.WriteLine("--- broker ---\n" + broker.Output + "\n--- runner ---\n" + runner.Output);
            throw;
        }
        finally
        {
            await runner.DisposeAsync();
            await broker.DisposeAsync();
        }
    }
}

/// <summary>A cluster that can be killed and started again on the same port (the broker keeps its connection string).</summary>
public sealed class RestartablePostgres(PostgresBinaries binaries, string dataDirectory) : IAsyncDisposable
{
    private readonly PostgresCluster _cluster = new(binaries, dataDirectory);
    private Process? _server;

    public int Port { get; private set; }

    public async Task StartAsync()
    {
        await _cluster.PrepareAsync();
        if (Port == 0) Port = PostgresCluster.FreePort();
        var (file, args) = binaries.AsServiceUser(binaries.Postgres, _cluster.ServerArguments(Port));
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _server = Process.Start(psi)!;
        _server.OutputDataReceived += (_, _) => { };
        _server.ErrorDataReceived += (_, _) => { };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        var server = _server;
        await PostgresCluster.WaitUntilAcceptingAsync(Port, TimeSpan.FromSeconds(30), () => server.HasExited);
        // Answering the handshake is not accepting queries yet (crash recovery, "starting up").
        await Eventually.WaitAsync(async () => await Database.ScalarAsync<int>(_cluster.ConnectionStringFor("postgres", Port), "SELECT 1") == 1,
            TimeSpan.FromSeconds(30), "Postgres to accept queries", TimeSpan.FromMilliseconds(100));
    }

    public async Task<string> CreateDatabaseAsync(string name)
    {
        await Database.ExecuteAsync(_cluster.ConnectionStringFor("postgres", Port), $"CREATE DATABASE \"{name}\"");
        return _cluster.ConnectionStringFor(name, Port);
    }

    /// <summary>SIGKILL of the postmaster and its backends, as a crash would.</summary>
    public void Kill()
    {
        if (_server is { HasExited: false } s)
        {
            s.Kill(entireProcessTree: true);
            s.WaitForExit();
        }
        _server?.Dispose();
        _server = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is { HasExited: false } s)
        {
            s.Kill(entireProcessTree: true);
            await s.WaitForExitAsync();
        }
        _server?.Dispose();
    }
}
