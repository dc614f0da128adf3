using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>A Codex thread's token totals as <c>turn.completed</c> reports them (input includes the cached part).</summary>
public sealed record CodexUsage(long InputTokens, long OutputTokens);

/// <summary>
/// Turns <c>codex exec --json</c> JSONL (thread.started, turn.started, item.started/updated/completed,
/// turn.completed/failed, error) into typed events. Items: agent_message, command_execution, file_change,
/// mcp_tool_call, web_search, todo_list (the update_plan tool), error. As the real CLI (0.169) writes them:
/// <c>turn.completed</c>'s usage is the thread's running total, so a resumed turn's own tokens are that total less
/// <paramref name="before"/>; top-level <c>error</c> lines are retry notices ("Reconnecting... 2/5"), not the end of
/// the turn; <c>error</c> items are warnings (a model without metadata, a transport fallback).
/// </summary>
public sealed class CodexEventParser(string? projectPath = null, CodexUsage? before = null) : JsonLinesParser
{
    private readonly HashSet<string> _started = [];

    public string? ThreadId { get; private set; }

    /// <summary>The thread's totals after this turn (hand them to the parser of the next turn of the thread).</summary>
    public CodexUsage Totals { get; private set; } = before ?? new CodexUsage(0, 0);

    /// <summary>Input tokens of this turn (cached ones included: the API counts them in input_tokens).</summary>
    public long InputTokens => Math.Max(0, Totals.InputTokens - (before?.InputTokens ?? 0));

    public long OutputTokens => Math.Max(0, Totals.OutputTokens - (before?.OutputTokens ?? 0));

    public int Turns { get; private set; }

    public bool Completed { get; private set; }

    /// <summary>Why the turn failed (turn.failed), else null.</summary>
    public string? Error { get; private set; }

    /// <summary>The last error notice, for a run that ends without turn.completed or turn.failed.</summary>
    public string? LastNotice { get; private set; }

    public IReadOnlyList<TodoItem> Todos { get; private set; } = [];

    protected override string NotJsonLevel => "debug";

    protected override IReadOnlyList<ProjectEvent> Map(JsonElement root)
    {
        switch (String(root, "type"))
        {
            case "thread.started":
                ThreadId = String(root, "thread_id");
                return [new BuildLog($"Codex started (thread {ThreadId}).")];
            case "turn.started":
                Turns++;
                return [];
            case "turn.completed":
                Completed = true;
                if (root.TryGetProperty("usage", out var usage))
                {
                    Totals = new CodexUsage(Long(usage, "input_tokens"), Long(usage, "output_tokens"));
                }
                return [];
            case "turn.failed":
                Error = root.TryGetProperty("error", out var err) ? String(err, "message") ?? err.GetRawText() : "Codex turn failed.";
                return [new BuildLog(Error, "error")];
            case "error":
                LastNotice = String(root, "message") ?? "Codex reported an error.";
                return [new BuildLog(LastNotice, "warn")];
            case "item.started":
            case "item.updated":
            case "item.completed":
                return root.TryGetProperty("item", out var item) ? Item(item, String(root, "type") == "item.completed") : [];
            default:
                return [];
        }
    }

    private List<ProjectEvent> Item(JsonElement item, bool completed)
    {
        var id = String(item, "id") ?? Guid.NewGuid().ToString("N");
        switch (String(item, "type") ?? String(item, "item_type"))
        {
            case "agent_message":
                return completed && String(item, "text") is { Length: > 0 } text ? [new AgentMessage(text)] : [];
            case "todo_list":
                if (!item.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
                {
                    return [];
                }
                var todos = items.EnumerateArray()
                    .Select(t => new TodoItem(String(t, "text") ?? "", t.TryGetProperty("completed", out var c) && c.ValueKind == JsonValueKind.True ? TodoStatuses.Completed : TodoStatuses.Pending))
                    .ToList();
                // Codex repeats the final list as item.completed; only a change is news.
                if (todos.SequenceEqual(Todos))
                {
                    return [];
                }
                Todos = todos;
                return [new TodosUpdated(Todos)];
            case "command_execution":
                return Tool(id, "Bash", Command(String(item, "command")), completed, () =>
                {
                    var exit = item.TryGetProperty("exit_code", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetInt32() : (int?)null;
                    return (exit is null or 0 && String(item, "status") != "failed", ToolSummaries.Shorten(String(item, "aggregated_output")));
                });
            case "file_change":
                var changes = item.TryGetProperty("changes", out var ch) && ch.ValueKind == JsonValueKind.Array
                    ? string.Join(", ", ch.EnumerateArray().Select(c => $"{String(c, "kind")} {Relative(String(c, "path"))}"))
                    : "";
                return Tool(id, "Edit", changes, completed, () => (String(item, "status") != "failed", changes));
            case "mcp_tool_call":
                return Tool(id, $"{String(item, "server")}/{String(item, "tool")}", "", completed, () => (String(item, "status") != "failed", ""));
            case "web_search":
                return Tool(id, "WebSearch", String(item, "query") ?? "", completed, () => (true, ""));
            case "error":
                return completed ? [new BuildLog(String(item, "message") ?? "Codex error", "warn")] : [];
            default:
                return [];
        }
    }

    private List<ProjectEvent> Tool(string id, string name, string summary, bool completed, Func<(bool Ok, string Result)> result)
    {
        var events = new List<ProjectEvent>();
        if (_started.Add(id))
        {
            events.Add(new ToolUse(id, name, ToolSummaries.Shorten(summary), ToolStatuses.Running));
        }
        if (completed)
        {
            var (ok, text) = result();
            events.Add(new ToolUse(id, name, ToolSummaries.Shorten(summary), ok ? ToolStatuses.Succeeded : ToolStatuses.Failed, text));
        }
        return events;
    }

    /// <summary>The command the model asked for: Codex reports it wrapped as <c>/bin/bash -lc '…'</c>.</summary>
    private static string Command(string? command)
    {
        if (command is null)
        {
            return "";
        }
        foreach (var prefix in new[] { "/bin/bash -lc ", "bash -lc ", "/bin/sh -c ", "sh -c " })
        {
            if (command.StartsWith(prefix, StringComparison.Ordinal) && command.Length > prefix.Length + 1)
            {
                var quoted = command[prefix.Length..];
                var quote = quoted[0];
                if (quote is '\'' or '"' && quoted[^1] == quote && quoted.IndexOf(quote, 1) == quoted.Length - 1)
                {
                    return quoted[1..^1];
                }
            }
        }
        return command;
    }

    private string? Relative(string? path) =>
        path is not null && projectPath is not null && Path.IsPathRooted(path) ? Path.GetRelativePath(projectPath, path) : path;
}
