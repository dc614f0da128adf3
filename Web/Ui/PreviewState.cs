// What the preview panel shows instead of a blank frame, derived from the project row and its runner alone, so the
// web UI, its tests and the VS Code extension's model (which mirrors this file) agree on every state.
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Ui;

public enum PreviewKind
{
    /// <summary>The project waits for its build to start (queued behind other builds, or for the runner).</summary>
    Waiting,
    Building,
    Installing,
    Starting,
    Running,
    Crashed,
    RunnerOffline,
    Stopped,
    Unreachable,
    BuildFailed,
    Deleting,
    /// <summary>The stored preview address fails <see cref="PreviewUrls.IsAcceptable"/>: shown as text, never as a frame or link.</summary>
    Refused,
}

/// <summary>The one button a state offers.</summary>
public enum PreviewAction
{
    None,
    /// <summary>Start the dev server (it is stopped).</summary>
    Start,
    /// <summary>Start the dev server again (it crashed or cannot be reached).</summary>
    Restart,
}

public sealed record PreviewState(
    PreviewKind Kind,
    string Title,
    string? Detail = null,
    PreviewAction Action = PreviewAction.None,
    string? PreviewUrl = null,
    int? ExitCode = null,
    IReadOnlyList<string>? LastLines = null,
    int? TodosDone = null,
    int? TodosTotal = null)
{
    public IReadOnlyList<string> Lines => LastLines ?? [];

    /// <summary>The frame is shown only when there is something to show in it.</summary>
    public bool ShowsFrame => Kind == PreviewKind.Running && PreviewUrl is not null;

    /// <param name="project">The project row as the API shows it.</param>
    /// <param name="runner">Its runner as the broker last recorded it; null when it never connected.</param>
    /// <param name="reachable">What the browser found when it tried the preview URL; null when it has not tried.</param>
    /// <param name="previewDomain">This server's preview domain (SentryVibe:PreviewDomain), under which relay URLs are acceptable.</param>
    public static PreviewState From(ProjectView project, RunnerView? runner, bool? reachable = null, string? previewDomain = null)
    {
        var dev = project.DevServer;

        if (project.DeleteRequestedAt is not null)
        {
            return new(PreviewKind.Deleting, "Deleting this project",
                "The runner is stopping its processes and removing the project folder.");
        }

        // Without its runner nothing of the preview can work (the relay goes through it), whatever the row last said.
        if (runner is null || runner.Status != RunnerStatuses.Online)
        {
            var name = runner?.Name ?? runner?.Id ?? project.RunnerId ?? "local";
            var detail = runner is null
                ? $"Runner '{name}' has not connected yet. Start it with `sentryvibe-runner run`; queued work starts when it connects."
                : $"Runner '{name}' is offline{(runner.LastSeenAt is { } seen ? $" (last seen {seen:yyyy-MM-dd HH:mm} UTC)" : "")}. Queued work starts when it reconnects.";
            return new(PreviewKind.RunnerOffline, "Runner offline", detail);
        }

        switch (dev.Status)
        {
            case DevServerStatuses.Failed:
                return new(PreviewKind.Crashed,
                    dev.ExitCode is { } code ? $"The dev server crashed (exit code {code})" : "The dev server crashed",
                    dev.Reason is { Length: > 0 } reason && reason != "exited" ? Describe(reason) : "It stopped without being asked to. Its last output:",
                    PreviewAction.Restart, ExitCode: dev.ExitCode, LastLines: dev.LastLines);

            // Checked again where shown, whatever the broker stored (docs/security.md): a runner's URL could be
            // javascript: or another site, and the frame runs with allow-scripts allow-same-origin.
            case DevServerStatuses.Running when dev.PreviewUrl is not null && !PreviewUrls.IsAcceptable(dev.PreviewUrl, previewDomain):
                return new(PreviewKind.Refused, "Preview address refused", RefusedDetail(dev.PreviewUrl));

            case DevServerStatuses.Running when dev.PreviewUrl is null:
                return new(PreviewKind.Unreachable, "No preview address",
                    dev.Port is { } p ? $"The dev server listens on port {p}, but no preview address was made for it." : "The dev server runs, but no preview address was made for it.",
                    PreviewAction.Restart);

            case DevServerStatuses.Running when reachable == false:
                return new(PreviewKind.Unreachable, "The preview cannot be reached",
                    $"{dev.PreviewUrl} did not answer from this browser. The dev server may still be compiling, or the tunnel is down.",
                    PreviewAction.Restart, dev.PreviewUrl, LastLines: dev.LastLines);

            case DevServerStatuses.Running:
                return new(PreviewKind.Running, "Running", dev.PreviewUrl, PreviewUrl: dev.PreviewUrl);

            case DevServerStatuses.Starting when dev.Reason == "installing":
                return new(PreviewKind.Installing, "Installing dependencies",
                    dev.LastLines.LastOrDefault(l => !string.IsNullOrWhiteSpace(l)) ?? "Running the package manager…", LastLines: dev.LastLines);

            case DevServerStatuses.Starting:
                return new(PreviewKind.Starting, "Starting the dev server",
                    dev.LastLines.LastOrDefault(l => !string.IsNullOrWhiteSpace(l)) ?? project.RunCommand ?? "Waiting for it to listen on a port…", LastLines: dev.LastLines);
        }

        var done = project.Todos.Count(t => t.Status == TodoStatuses.Completed);
        switch (project.Status)
        {
            case ProjectStatuses.Building:
                var current = project.Todos.FirstOrDefault(t => t.Status == TodoStatuses.InProgress);
                return new(PreviewKind.Building, "Building your app",
                    current is not null ? current.ActiveForm ?? current.Content : "The agent is working on it…",
                    TodosDone: project.Todos.Count > 0 ? done : null, TodosTotal: project.Todos.Count > 0 ? project.Todos.Count : null);

            case ProjectStatuses.Pending:
                return new(PreviewKind.Waiting, "Waiting to build", project.StatusReason ?? "The runner picks the build up shortly.");

            case ProjectStatuses.Failed:
                return new(PreviewKind.BuildFailed, "The build failed", project.StatusReason,
                    project.RunCommand is not null ? PreviewAction.Start : PreviewAction.None);
        }

        return new(PreviewKind.Stopped, "The dev server is stopped",
            dev.ExitCode is not null || dev.Reason == "stopped" ? "It was stopped. Start it to see the app again." : "Start it to see the app.",
            PreviewAction.Start);
    }

    /// <summary>The stored preview URL when it may be shown as a frame or a link; null otherwise.</summary>
    public static string? ShowableUrl(string? url, string? previewDomain) => PreviewUrls.IsAcceptable(url, previewDomain) ? url : null;

    public static string RefusedDetail(string url) =>
        $"This preview address was refused: \"{(url.Length > 200 ? url[..200] + "…" : url)}\" is not an http(s) address on this machine, " +
        "a Cloudflare quick tunnel or this server's preview domain, so it is not opened here.";

    private static string Describe(string reason) => reason switch
    {
        "crashed" => "It exited on its own. Its last output:",
        "port-timeout" => "It started but never listened on a port. Its last output:",
        "install-failed" => "Installing dependencies failed. Its last output:",
        _ => reason.EndsWith('.') || reason.EndsWith(':') ? reason : reason + ". Its last output:",
    };
}
