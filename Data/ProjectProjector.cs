using SentryVibe.Protocol;

namespace SentryVibe.Data;

/// <summary>
/// Folds events into the project row (status, todos, dev server, metadata). Applied in the same transaction
/// that appends the events, so the row and the log never disagree.
/// </summary>
public static class ProjectProjector
{
    public const int KeptLogLines = 30;

    /// <summary>
    /// The events <see cref="Apply"/> folds into nothing but the cursor (<c>LastEventId</c>, <c>UpdatedAt</c>): the
    /// hot ones (logs, agent text, tool calls). An explicit allowlist, not "whatever the switch lacks", so a new event
    /// type is projected field by field until someone decides otherwise. Intake folds a batch's run of these into one
    /// set-based UPDATE per batch instead of loading and saving the row (docs/architecture.md, "Events are an append-only log").
    /// </summary>
    public static bool MovesOnlyCursor(ProjectEvent e) => e is BuildLog or AgentMessage or ToolUse or UserMessage or CheckpointCreated;

    public static void Apply(Project project, ProjectEvent e, long eventId, DateTimeOffset at)
    {
        project.LastEventId = Math.Max(project.LastEventId, eventId);
        project.UpdatedAt = at;
        switch (e)
        {
            case BuildQueued q:
                project.Status = ProjectStatuses.Pending;
                project.StatusReason = $"Waiting for a free build slot (position {q.Position}).";
                break;
            case BuildStarted s:
                project.Status = ProjectStatuses.Building;
                project.StatusReason = null;
                project.Turns = Math.Max(project.Turns, s.Turn);
                break;
            case TodosUpdated t:
                project.Todos = [.. t.Todos];
                break;
            case ProjectMetadata m:
                project.Framework = m.Framework ?? project.Framework;
                project.RunCommand = m.RunCommand ?? project.RunCommand;
                project.Path = m.Path ?? project.Path;
                project.SessionId = m.SessionId ?? project.SessionId;
                if (m.Port is { } port && project.DevServer.Port is null)
                {
                    project.DevServer = Copy(project.DevServer, d => d.Port = port);
                }
                break;
            case BuildCompleted c:
                project.Status = ProjectStatuses.Ready;
                project.StatusReason = null;
                project.CostUsd += c.CostUsd;
                project.SessionId = c.SessionId ?? project.SessionId;
                break;
            case BuildFailed f:
                project.Status = ProjectStatuses.Failed;
                project.StatusReason = f.Reason;
                break;
            case BuildCancelled c:
                project.Status = ProjectStatuses.Cancelled;
                project.StatusReason = c.Reason ?? "Cancelled by the user.";
                break;
            case DevServerStarting s:
                project.DevServer = new DevServerState
                {
                    Status = DevServerStatuses.Starting,
                    Port = s.Port,
                    Reason = s.Phase,
                };
                break;
            case DevServerLog l:
                project.DevServer = Copy(project.DevServer, d =>
                {
                    d.LastLines.Add(l.Line);
                    if (d.LastLines.Count > KeptLogLines) d.LastLines.RemoveRange(0, d.LastLines.Count - KeptLogLines);
                });
                break;
            case PortDetected p:
                project.DevServer = Copy(project.DevServer, d =>
                {
                    d.Status = DevServerStatuses.Running;
                    d.Port = p.Port;
                    d.PreviewUrl = p.PreviewUrl;
                    d.Provider = p.Provider;
                    d.Reason = null;
                    d.ExitCode = null;
                });
                break;
            case DevServerExited x:
                project.DevServer = Copy(project.DevServer, d =>
                {
                    // A requested stop is not a failure; anything else that ends the server is.
                    var stopped = x.Reason is "stopped";
                    d.Status = stopped ? DevServerStatuses.Stopped : DevServerStatuses.Failed;
                    d.ExitCode = x.ExitCode;
                    d.Reason = x.Reason;
                    d.LastLines = [.. x.LastLines.TakeLast(KeptLogLines)];
                    d.PreviewUrl = stopped ? null : d.PreviewUrl;
                });
                break;
            case ProjectDeleted:
                project.DeletedAt ??= at;
                break;
            case CommandFailed cf when cf.CommandType is CommandTypes.StartBuild or CommandTypes.FollowUp:
                project.Status = ProjectStatuses.Failed;
                project.StatusReason = cf.Reason;
                break;
            case CommandFailed cf:
                project.StatusReason = cf.Reason;
                break;
        }
    }

    // Owned JSON values are compared by value; a fresh instance makes the change visible to the tracker.
    private static DevServerState Copy(DevServerState s, Action<DevServerState> change)
    {
        var copy = new DevServerState
        {
            Status = s.Status,
            Port = s.Port,
            PreviewUrl = s.PreviewUrl,
            Provider = s.Provider,
            Reason = s.Reason,
            ExitCode = s.ExitCode,
            LastLines = [.. s.LastLines],
        };
        change(copy);
        return copy;
    }
}
