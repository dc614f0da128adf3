using Microsoft.Extensions.Hosting;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>A build the runner did not live to finish is reported when the runner starts again, and only such a build.</summary>
public sealed class InterruptedBuildTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private RunnerHarness _runner = null!;

    public Task InitializeAsync()
    {
        _runner = RunnerHarness.Create();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _runner.DisposeAsync();

    [Fact]
    public async Task A_build_still_marked_under_way_at_start_is_reported_failed_as_interrupted_once()
    {
        var projectId = Guid.NewGuid();
        _runner.EarlierRun.Begin(projectId); // what a runner killed mid-build leaves

        await ((IHostedService)_runner.Engine).StartAsync(CancellationToken.None);

        var failed = Assert.IsType<BuildFailed>(Assert.Single(_runner.Events.For(projectId)));
        Assert.Equal(BuildEngine.InterruptedReason, failed.Reason);
        Assert.Empty(_runner.Builds.LeftByEarlierRun());
        Assert.Empty(_runner.EarlierRun.LeftByEarlierRun());
    }

    [Fact]
    public async Task A_finished_build_leaves_nothing_to_report_at_the_next_start()
    {
        var command = new StartBuild(Guid.NewGuid(), "finished-app", "Create a React todo app", "vite-react", AgentNames.None, StartDevServerWhenReady: false);
        await _runner.AcceptAsync(command);
        await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        await _runner.Engine.WhenIdleAsync(command.ProjectId);

        Assert.Empty(_runner.Builds.Current);
        Assert.Empty(_runner.EarlierRun.LeftByEarlierRun());
        var before = _runner.Events.For(command.ProjectId).Count;
        await ((IHostedService)_runner.Engine).StartAsync(CancellationToken.None);
        Assert.Equal(before, _runner.Events.For(command.ProjectId).Count);
    }

    [Fact]
    public async Task A_build_is_under_way_in_one_record_from_acceptance_to_its_last_event_and_not_after()
    {
        var command = new StartBuild(Guid.NewGuid(), "tracked-app", "Create a React todo app", "vite-react", AgentNames.None, StartDevServerWhenReady: false);
        var seen = new List<(string Event, bool Active, bool Marked)>();
        _runner.Events.OnPublish = (project, body) =>
        {
            if (project == command.ProjectId)
            {
                lock (seen) seen.Add((body.GetType().Name, _runner.Builds.Current.Contains(command.ProjectId),
                    _runner.EarlierRun.LeftByEarlierRun().Contains(command.ProjectId)));
            }
        };

        await _runner.AcceptAsync(command);
        await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        await _runner.Engine.WhenIdleAsync(command.ProjectId);

        lock (seen)
        {
            Assert.Contains(seen, s => s.Event == nameof(BuildStarted));
            Assert.Contains(seen, s => s.Event == nameof(BuildCompleted));
            // Every event of the build, the last one included, is published while the build is under way, in memory and on disk.
            Assert.All(seen, s => Assert.True(s.Active && s.Marked, $"{s.Event} was published while the build was not recorded as under way"));
        }
        Assert.DoesNotContain(command.ProjectId, _runner.Builds.Current);
        Assert.Empty(_runner.EarlierRun.LeftByEarlierRun());
    }
}
