// Folds a project's event log into what the project page shows: chat turns, the two logs and the checkpoints.
// Immutable snapshots: the feed applies events on its own task while components render the last snapshot.
using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using SentryVibe.Protocol;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Ui;

public abstract record TimelineItem(long EventId, DateTimeOffset At);

public sealed record AgentText(long EventId, DateTimeOffset At, string Html) : TimelineItem(EventId, At);

public sealed record ToolCall(long EventId, DateTimeOffset At, string ToolUseId, string Name, string Input, string Status, string? Result)
    : TimelineItem(EventId, At);

public enum NoticeKind { Info, Success, Warning, Error }

public sealed record Notice(long EventId, DateTimeOffset At, NoticeKind Kind, string Text) : TimelineItem(EventId, At);

public sealed record CheckpointMark(long EventId, DateTimeOffset At, string CheckpointId, string Message) : TimelineItem(EventId, At);

public enum TurnOutcome { Running, Completed, Failed, Cancelled }

/// <summary>Cost and size of a finished turn, from build-completed.</summary>
public sealed record TurnCost(decimal CostUsd, long DurationMs, long InputTokens, long OutputTokens, int AgentTurns);

/// <summary>One prompt and everything the agent did about it. <see cref="Prompt"/> is null for a turn the runner resumed by itself.</summary>
public sealed record Turn(int Number, string? Prompt, DateTimeOffset At, ImmutableList<TimelineItem> Items, TurnOutcome? Outcome, TurnCost? Cost)
{
    public bool IsRunning => Outcome == TurnOutcome.Running;
}

public sealed record LogLine(long EventId, DateTimeOffset At, string Text, string Level);

public sealed record TimelineSnapshot(
    ImmutableList<Turn> Turns,
    ImmutableList<LogLine> BuildLog,
    ImmutableList<LogLine> DevServerLog,
    ImmutableList<CheckpointMark> Checkpoints,
    long LastEventId)
{
    public static TimelineSnapshot Empty { get; } = new([], [], [], [], 0);
}

public sealed class ProjectTimeline
{
    /// <summary>Lines kept per log in the browser; the full log stays in the database.</summary>
    public const int MaxLogLines = 5000;

    private readonly Dictionary<string, (int Turn, int Item)> _tools = new(StringComparer.Ordinal);

    public TimelineSnapshot Current { get; private set; } = TimelineSnapshot.Empty;

    /// <summary>Applies events in id order; ids already seen are ignored, so re-reads after a reconnect never duplicate.</summary>
    public bool Apply(IEnumerable<EventView> events)
    {
        var s = Current;
        var changed = false;
        foreach (var e in events)
        {
            if (e.Id <= s.LastEventId) continue;
            s = Apply(s, e) with { LastEventId = e.Id };
            changed = true;
        }
        if (changed) Current = s;
        return changed;
    }

    private TimelineSnapshot Apply(TimelineSnapshot s, EventView e)
    {
        ProjectEvent? body;
        try
        {
            body = e.Data.Deserialize<ProjectEvent>(LinkProtocol.JsonOptions);
        }
        catch (JsonException)
        {
            // A newer runner may send types this Web does not know yet: they show in the build log, not as an error.
            return s with { BuildLog = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp, $"[{e.Type}]", "info")) };
        }

        switch (body)
        {
            case UserMessage m:
                return s with { Turns = s.Turns.Add(new Turn(s.Turns.Count + 1, m.Prompt, e.Timestamp, [], null, null)) };

            case BuildStarted b:
            {
                var log = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp,
                    $"Turn {b.Turn} started — agent {b.Agent}, template {b.TemplateId}{(b.Reason is { } r ? $" ({r})" : "")}", "info"));
                var last = s.Turns.LastOrDefault();
                if (last is not null && last.Outcome is null)
                {
                    return s with { BuildLog = log, Turns = s.Turns.SetItem(s.Turns.Count - 1, last with { Outcome = TurnOutcome.Running }) };
                }
                // No prompt of the user's opened it: the runner resumed on its own (open todos) or the log predates user-message.
                var items = b.Reason is { Length: > 0 } reason
                    ? ImmutableList.Create<TimelineItem>(new Notice(e.Id, e.Timestamp, NoticeKind.Info, $"Resumed: {reason}"))
                    : [];
                return s with
                {
                    BuildLog = log,
                    Turns = s.Turns.Add(new Turn(s.Turns.Count + 1, s.Turns.Count == 0 ? b.Prompt : null, e.Timestamp, items, TurnOutcome.Running, null)),
                };
            }

            case AgentMessage m:
                return AddItem(s, e, new AgentText(e.Id, e.Timestamp, Markdown.ToHtml(m.Text)));

            case ToolUse t:
                if (_tools.TryGetValue(t.ToolUseId, out var at) && at.Turn < s.Turns.Count && at.Item < s.Turns[at.Turn].Items.Count
                    && s.Turns[at.Turn].Items[at.Item] is ToolCall existing)
                {
                    var updated = existing with
                    {
                        Status = t.Status,
                        Result = t.ResultSummary ?? existing.Result,
                        Input = string.IsNullOrEmpty(t.InputSummary) ? existing.Input : t.InputSummary,
                    };
                    var turn = s.Turns[at.Turn];
                    return s with { Turns = s.Turns.SetItem(at.Turn, turn with { Items = turn.Items.SetItem(at.Item, updated) }) };
                }
                s = AddItem(s, e, new ToolCall(e.Id, e.Timestamp, t.ToolUseId, t.Name, t.InputSummary, t.Status, t.ResultSummary));
                _tools[t.ToolUseId] = (s.Turns.Count - 1, s.Turns[^1].Items.Count - 1);
                return s;

            case TodosUpdated:
                return s; // the project row carries the list

            case BuildLog l:
                s = s with { BuildLog = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp, l.Message, l.Level)) };
                return l.Level is "warning" or "error"
                    ? AddItem(s, e, new Notice(e.Id, e.Timestamp, l.Level == "error" ? NoticeKind.Error : NoticeKind.Warning, l.Message))
                    : s;

            case ProjectMetadata m:
            {
                var parts = new List<string>();
                if (m.Framework is { } f) parts.Add($"framework {f}");
                if (m.RunCommand is { } c) parts.Add($"run `{c}`");
                if (m.Port is { } p) parts.Add($"port {p}");
                if (m.Path is { } path) parts.Add($"in {path}");
                return s with { BuildLog = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp, "Project: " + string.Join(", ", parts), "info")) };
            }

            case CheckpointCreated c:
            {
                var mark = new CheckpointMark(e.Id, c.CreatedAt, c.CheckpointId, c.Message);
                s = s with { Checkpoints = s.Checkpoints.RemoveAll(x => x.CheckpointId == c.CheckpointId).Insert(0, mark) };
                return AddItem(s, e, mark);
            }

            case BuildCompleted c:
                s = s with { BuildLog = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp, $"Turn finished in {Duration(c.DurationMs)}, {Cost(c.CostUsd)}", "info")) };
                return EndTurn(s, e, TurnOutcome.Completed, new TurnCost(c.CostUsd, c.DurationMs, c.InputTokens, c.OutputTokens, c.Turns), null);

            case BuildFailed f:
                s = s with { BuildLog = Add(s.BuildLog, new LogLine(e.Id, e.Timestamp, "Build failed: " + f.Reason, "error")) };
                return EndTurn(s, e, TurnOutcome.Failed, null, new Notice(e.Id, e.Timestamp, NoticeKind.Error, f.Reason));

            case BuildCancelled c:
                return EndTurn(s, e, TurnOutcome.Cancelled, null, new Notice(e.Id, e.Timestamp, NoticeKind.Warning, c.Reason ?? "Cancelled."));

            case BuildQueued q:
                return AddItem(s, e, new Notice(e.Id, e.Timestamp, NoticeKind.Info, $"Waiting for a free build slot (position {q.Position})."));

            case DevServerStarting d:
                return s with
                {
                    DevServerLog = Add(s.DevServerLog, new LogLine(e.Id, e.Timestamp,
                        d.Phase == "installing" ? "Installing dependencies…" : $"$ {d.Command}", "command")),
                };

            case DevServerLog l:
                return s with { DevServerLog = Add(s.DevServerLog, new LogLine(e.Id, e.Timestamp, l.Line, l.Stream == "stderr" ? "stderr" : "info")) };

            case PortDetected p:
                return s with { DevServerLog = Add(s.DevServerLog, new LogLine(e.Id, e.Timestamp, $"Listening on port {p.Port} — preview at {p.PreviewUrl}", "success")) };

            case DevServerExited x:
            {
                var text = x.Reason == "stopped"
                    ? "Dev server stopped."
                    : $"Dev server exited{(x.ExitCode is { } code ? $" with code {code}" : "")}{(x.Reason is { } r ? $" ({r})" : "")}.";
                return s with { DevServerLog = Add(s.DevServerLog, new LogLine(e.Id, e.Timestamp, text, x.Reason == "stopped" ? "info" : "error")) };
            }

            case CommandFailed cf:
            {
                var notice = new Notice(e.Id, e.Timestamp, NoticeKind.Error, cf.Reason);
                return cf.CommandType is CommandTypes.StartBuild or CommandTypes.FollowUp
                    ? EndTurn(s, e, TurnOutcome.Failed, null, notice)
                    : AddItem(s, e, notice);
            }

            case ProjectDeleted:
                return AddItem(s, e, new Notice(e.Id, e.Timestamp, NoticeKind.Info, "The project was deleted."));
        }
        return s;
    }

    private static TimelineSnapshot AddItem(TimelineSnapshot s, EventView e, TimelineItem item)
    {
        if (s.Turns.Count == 0)
        {
            return s with { Turns = [new Turn(1, null, e.Timestamp, [item], null, null)] };
        }
        var last = s.Turns[^1];
        return s with { Turns = s.Turns.SetItem(s.Turns.Count - 1, last with { Items = last.Items.Add(item) }) };
    }

    private static TimelineSnapshot EndTurn(TimelineSnapshot s, EventView e, TurnOutcome outcome, TurnCost? cost, Notice? notice)
    {
        if (notice is not null) s = AddItem(s, e, notice);
        if (s.Turns.Count == 0) return s;
        var last = s.Turns[^1];
        return s with { Turns = s.Turns.SetItem(s.Turns.Count - 1, last with { Outcome = outcome, Cost = cost ?? last.Cost }) };
    }

    private static ImmutableList<LogLine> Add(ImmutableList<LogLine> log, LogLine line)
    {
        log = log.Add(line);
        return log.Count > MaxLogLines ? log.RemoveRange(0, log.Count - MaxLogLines) : log;
    }

    public static string Cost(decimal usd) => usd == 0 ? "$0" : usd < 0.01m ? "<$0.01" : usd.ToString("$0.00", CultureInfo.InvariantCulture);

    public static string Duration(long ms) => ms switch
    {
        < 1000 => $"{ms} ms",
        < 60_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:0.#} s"),
        _ => $"{ms / 60_000} min {ms % 60_000 / 1000} s",
    };
}
