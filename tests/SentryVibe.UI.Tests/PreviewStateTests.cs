using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Services;
using SentryVibe.Web.Ui;

namespace SentryVibe.UI.Tests;

public sealed class PreviewStateTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly RunnerView Online = new("r1", "laptop", RunnerStatuses.Online, Now, "1.0.0", "host", [Agents.ClaudeCode], "relay");

    private static ProjectView Project(
        string status = ProjectStatuses.Ready,
        DevServerView? dev = null,
        IReadOnlyList<TodoItem>? todos = null,
        string? statusReason = null,
        string? runCommand = "npm run dev",
        DateTimeOffset? deleteRequestedAt = null) =>
        new(Guid.NewGuid(), "todo", "Todo", "Create a todo app", status, statusReason, "vite-react", "r1", Agents.ClaudeCode,
            "/ws/todo", runCommand, "vite", todos ?? [], dev ?? Dev(DevServerStatuses.Stopped), "abc", 0m, 1, 10, Now, Now, deleteRequestedAt);

    private static DevServerView Dev(string status, string? url = null, string? reason = null, int? exitCode = null, params string[] lines) =>
        new(status, 5173, url, "relay", reason, exitCode, lines);

    [Fact]
    public void A_running_dev_server_with_a_preview_url_shows_the_frame()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Running, "http://abc.preview.localhost:5100/")), Online);

        Assert.Equal(PreviewKind.Running, state.Kind);
        Assert.True(state.ShowsFrame);
        Assert.Equal("http://abc.preview.localhost:5100/", state.PreviewUrl);
    }

    [Fact]
    public void A_building_project_names_the_todo_in_progress_and_the_progress()
    {
        var todos = new List<TodoItem>
        {
            new("Scaffold", TodoStatuses.Completed),
            new("Add the list", TodoStatuses.InProgress, "Adding the list"),
            new("Style it", TodoStatuses.Pending),
        };

        var state = PreviewState.From(Project(ProjectStatuses.Building, todos: todos), Online);

        Assert.Equal(PreviewKind.Building, state.Kind);
        Assert.Equal("Adding the list", state.Detail);
        Assert.Equal((1, 3), (state.TodosDone, state.TodosTotal));
        Assert.False(state.ShowsFrame);
    }

    [Fact]
    public void A_running_preview_stays_visible_while_a_follow_up_builds()
    {
        var state = PreviewState.From(Project(ProjectStatuses.Building, Dev(DevServerStatuses.Running, "http://x.localhost:5173/")), Online);

        Assert.Equal(PreviewKind.Running, state.Kind);
    }

    [Fact]
    public void Installing_dependencies_shows_the_last_log_line()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Starting, reason: "installing", lines: ["added 120 packages", ""])), Online);

        Assert.Equal(PreviewKind.Installing, state.Kind);
        Assert.Equal("added 120 packages", state.Detail);
    }

    [Fact]
    public void Starting_shows_the_last_log_line()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Starting, reason: "starting", lines: ["> vite", "VITE v7 ready"])), Online);

        Assert.Equal(PreviewKind.Starting, state.Kind);
        Assert.Equal("VITE v7 ready", state.Detail);
    }

    [Fact]
    public void A_crashed_dev_server_shows_exit_code_last_lines_and_offers_restart()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Failed, "http://x.localhost:5173/", "crashed", 1, "Error: Cannot find module 'react'")), Online);

        Assert.Equal(PreviewKind.Crashed, state.Kind);
        Assert.Equal(1, state.ExitCode);
        Assert.Contains("exit code 1", state.Title);
        Assert.Equal(["Error: Cannot find module 'react'"], state.Lines);
        Assert.Equal(PreviewAction.Restart, state.Action);
    }

    [Fact]
    public void An_offline_runner_wins_over_what_the_row_last_said()
    {
        var offline = Online with { Status = RunnerStatuses.Offline };

        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Running, "http://x.localhost:5173/")), offline);

        Assert.Equal(PreviewKind.RunnerOffline, state.Kind);
        Assert.Contains("laptop", state.Detail);
        Assert.Contains("offline", state.Detail);
    }

    [Fact]
    public void A_runner_that_never_connected_is_offline_and_says_how_to_start_it()
    {
        var state = PreviewState.From(Project(ProjectStatuses.Pending), runner: null);

        Assert.Equal(PreviewKind.RunnerOffline, state.Kind);
        Assert.Contains("sentryvibe-runner run", state.Detail);
    }

    [Fact]
    public void A_stopped_dev_server_offers_start()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Stopped)), Online);

        Assert.Equal(PreviewKind.Stopped, state.Kind);
        Assert.Equal(PreviewAction.Start, state.Action);
    }

    [Fact]
    public void A_preview_the_browser_cannot_reach_is_unreachable()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Running, "http://x.localhost:5173/")), Online, reachable: false);

        Assert.Equal(PreviewKind.Unreachable, state.Kind);
        Assert.Contains("http://x.localhost:5173/", state.Detail);
        Assert.Equal(PreviewAction.Restart, state.Action);
    }

    [Fact]
    public void A_running_dev_server_without_a_preview_url_is_unreachable()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Running)), Online);

        Assert.Equal(PreviewKind.Unreachable, state.Kind);
        Assert.False(state.ShowsFrame);
    }

    [Fact]
    public void A_queued_project_says_why_it_waits()
    {
        var state = PreviewState.From(Project(ProjectStatuses.Pending, statusReason: "Waiting for a free build slot (position 2)."), Online);

        Assert.Equal(PreviewKind.Waiting, state.Kind);
        Assert.Contains("position 2", state.Detail);
    }

    [Fact]
    public void A_failed_build_gives_its_reason()
    {
        var state = PreviewState.From(Project(ProjectStatuses.Failed, statusReason: "The agent exited with code 2.", runCommand: null), Online);

        Assert.Equal(PreviewKind.BuildFailed, state.Kind);
        Assert.Equal("The agent exited with code 2.", state.Detail);
        Assert.Equal(PreviewAction.None, state.Action);
    }

    [Fact]
    public void A_project_being_deleted_says_so_before_anything_else()
    {
        var state = PreviewState.From(Project(dev: Dev(DevServerStatuses.Running, "http://x.localhost:5173/"), deleteRequestedAt: Now), Online);

        Assert.Equal(PreviewKind.Deleting, state.Kind);
    }
}
