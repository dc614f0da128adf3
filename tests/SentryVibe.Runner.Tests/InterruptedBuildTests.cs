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
        _runner.States.Building.Set(projectId); // what a runner killed mid-build leaves

        await ((IHostedService)_runner.Engine).StartAsync(CancellationToken.None);

        var failed = Assert.IsType<BuildFailed>(Assert.Single(_runner.Events.For(projectId)));
        Assert.Equal(BuildEngine.InterruptedReason, failed.Reason);
        Assert.Empty(_runner.States.Building.List());
    }

    [Fact]
    public async Task A_finished_build_leaves_nothing_to_report_at_the_next_start()
    {
        var command = new StartBuild(Guid.NewGuid(), "finished-app", "Create a React todo app", "vite-react", AgentNames.None, StartDevServerWhenReady: false);
        await _runner.AcceptAsync(command);
        await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        await _runner.Engine.WhenIdleAsync(command.ProjectId);

        Assert.Empty(_runner.States.Building.List());
        var before = _runner.Events.For(command.ProjectId).Count;
        await ((IHostedService)_runner.Engine).StartAsync(CancellationToken.None);
        Assert.Equal(before, _runner.Events.For(command.ProjectId).Count);
    }
}
