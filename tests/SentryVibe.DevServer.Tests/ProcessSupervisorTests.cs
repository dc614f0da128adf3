using System.Text.RegularExpressions;
using CliWrap;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;

namespace SentryVibe.DevServer.Tests;

public sealed partial class ProcessSupervisorTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly TempFolder _folder = new();
    private readonly ProcessSupervisor _supervisor = new(gracePeriod: TimeSpan.FromSeconds(2));
    private readonly List<int> _started = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        try
        {
            await _supervisor.DisposeAsync();
        }
        finally
        {
            Processes.KillTrees(_started);
            _folder.Dispose();
        }
    }

    [Fact]
    public async Task Stopping_a_process_ends_it_and_its_children_and_grandchildren()
    {
        var (process, tree) = await StartFamilyAsync(NodeScripts.Idle);

        var exit = await _supervisor.StopAsync(process);

        Assert.True(exit.StopRequested);
        Assert.Empty(Processes.StillAlive(tree));
        Assert.Empty(_supervisor.List());
    }

    [Fact]
    public async Task A_process_that_ignores_SIGINT_is_killed_with_its_tree_after_the_grace_period()
    {
        var (process, tree) = await StartFamilyAsync(NodeScripts.Stubborn);

        var exit = await _supervisor.StopAsync(process, TimeSpan.FromMilliseconds(500)).WaitAsync(Timeout);

        Assert.True(exit.StopRequested);
        Assert.Empty(Processes.StillAlive(tree));
    }

    [Fact]
    public async Task Disposing_the_supervisor_leaves_no_process_behind_including_grandchildren()
    {
        var (_, first) = await StartFamilyAsync(NodeScripts.Stubborn);
        var (_, second) = await StartFamilyAsync(NodeScripts.Idle);

        await _supervisor.DisposeAsync().AsTask().WaitAsync(Timeout);

        Assert.Empty(Processes.StillAlive(first.Concat(second)));
    }

    [Fact]
    public async Task The_hosted_service_stop_of_runner_shutdown_ends_everything()
    {
        var (_, tree) = await StartFamilyAsync(NodeScripts.Stubborn);

        await ((Microsoft.Extensions.Hosting.IHostedService)_supervisor).StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Empty(Processes.StillAlive(tree));
    }

    [Fact]
    public async Task Kill_all_at_process_exit_ends_every_tree_synchronously()
    {
        var (process, tree) = await StartFamilyAsync(NodeScripts.Stubborn);

        _supervisor.KillAll();

        await Wait.UntilAsync(() => Processes.StillAlive(tree).Count == 0, Timeout, "every process of the tree is gone");
        Assert.True((await process.Completion.WaitAsync(Timeout)).StopRequested);
    }

    [Fact]
    public async Task A_process_that_exits_on_its_own_reports_its_exit_code_and_leaves_no_orphans()
    {
        var lines = new List<string>();
        var script = _folder.Write("crash.js", NodeScripts.Crash);
        var trigger = Path.Combine(_folder.Path, "crash-now");
        var process = _supervisor.Start("crash", null, Cli.Wrap("node").WithArguments([script, trigger])
            .WithStandardOutputPipe(PipeTarget.ToDelegate(l => { lock (lines) { lines.Add(l); } })));
        _started.Add(process.ProcessId);
        await Wait.UntilAsync(() => { lock (lines) { return lines.Any(l => l.StartsWith("grandchild ")); } }, Timeout, "the grandchild started");
        await Wait.UntilAsync(() => Processes.TreeOf(process.ProcessId).Count >= 3, Timeout, "the tree has three processes");
        var tree = Processes.TreeOf(process.ProcessId);

        File.WriteAllText(trigger, "");
        var exit = await process.Completion.WaitAsync(Timeout);

        Assert.Equal(1, exit.ExitCode);
        Assert.False(exit.StopRequested);
        Assert.Empty(Processes.StillAlive(tree));
    }

    [Fact]
    public async Task List_shows_name_pid_project_start_time_and_command()
    {
        var projectId = Guid.NewGuid();
        var before = DateTimeOffset.UtcNow;
        var (process, _) = await StartFamilyAsync(NodeScripts.Stubborn, projectId);

        var info = Assert.Single(_supervisor.List());

        Assert.Equal("family", info.Name);
        Assert.Equal(projectId, info.ProjectId);
        Assert.Equal(process.ProcessId, info.ProcessId);
        Assert.InRange(info.StartedAt, before.AddSeconds(-1), DateTimeOffset.UtcNow);
        Assert.StartsWith("node ", info.Command);
        Assert.Contains("family.js", info.Command);
    }

    [Fact]
    public async Task Children_run_in_their_own_process_group_so_the_terminal_Ctrl_C_does_not_reach_them_unsupervised()
    {
        if (!ProcessTable.HasProcFs)
        {
            return; // process groups are read from /proc
        }
        var (process, _) = await StartFamilyAsync(NodeScripts.Stubborn);

        var entry = ProcessTable.Get(process.ProcessId);

        Assert.NotNull(entry);
        Assert.Equal(process.ProcessId, entry.ProcessGroup);
        Assert.NotEqual(ProcessTable.Get(Environment.ProcessId)!.ProcessGroup, entry.ProcessGroup);
    }

    [Fact]
    public void Starting_a_program_that_is_not_installed_says_so()
    {
        var ex = Assert.Throws<ExecutableNotFoundException>(() =>
            _supervisor.Start("missing", null, Cli.Wrap("sentryvibe-no-such-program")));

        Assert.Contains("sentryvibe-no-such-program", ex.Message);
        Assert.Empty(_supervisor.List());
    }

    private async Task<(SupervisedProcess Process, IReadOnlyList<ProcessEntry> Tree)> StartFamilyAsync(string code, Guid? projectId = null)
    {
        var lines = new List<string>();
        var script = _folder.Write($"{Guid.NewGuid():N}.family.js", code);
        var process = _supervisor.Start("family", projectId, Cli.Wrap("node").WithArguments([script])
            .WithStandardOutputPipe(PipeTarget.ToDelegate(l => { lock (lines) { lines.Add(l); } })));
        _started.Add(process.ProcessId);

        int[] Pids()
        {
            lock (lines)
            {
                return lines.Select(l => PidLine().Match(l)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).ToArray();
            }
        }
        await Wait.UntilAsync(() => Pids().Length == 2, Timeout, "the child and grandchild printed their pids");
        await Wait.UntilAsync(() => Processes.TreeOf(process.ProcessId).Count >= 3, Timeout, "the tree has three processes");
        var tree = Processes.TreeOf(process.ProcessId);
        Assert.Contains(process.ProcessId, tree.Select(t => t.Pid));
        Assert.All(Pids(), pid => Assert.Contains(pid, tree.Select(t => t.Pid)));
        return (process, tree);
    }

    [GeneratedRegex(@"^(?:child|grandchild) (\d+)$")]
    private static partial Regex PidLine();
}
