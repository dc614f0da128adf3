using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// Turns <c>codex exec --json</c> JSONL (thread.started, item.started/updated/completed, turn.completed/failed, error)
/// into typed events. Items: agent_message, command_execution, file_change, mcp_tool_call, web_search, todo_list.
/// </summary>
public sealed class CodexEventParser(string? projectPath = null)
{
    private readonly HashSet<string> _started = [];

    public string? ThreadId { get; private set; }

    public long InputTokens { get; private set; }

    public long OutputTokens { get; private set; }

    public int Turns { get; private set; }

    public bool Completed { get; private set; }

    public string? Error { get; private set; }

    public IReadOnlyList<TodoItem> Todos { get; private set; } = [];

    public IReadOnlyList<ProjectEvent> Parse(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return [];
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException)
        {
            return [new BuildLog(ToolSummaries.Shorten(line), "debug")];
        }
        using (document)
        {
            var root = document.RootElement;
            switch (Str(root, "type"))
            {
                case "thread.started":
                    ThreadId = Str(root, "thread_id");
                    return [new BuildLog($"Codex started (thread {ThreadId}).")];
                case "turn.started":
                    Turns++;
                    return [];
                case "turn.completed":
                    Completed = true;
                    if (root.TryGetProperty("usage", out var usage))
                    {
                        InputTokens += Long(usage, "input_tokens") + Long(usage, "cached_input_tokens");
                        OutputTokens += Long(usage, "output_tokens");
                    }
                    return [];
                case "turn.failed":
                    Error = root.TryGetProperty("error", out var err) ? Str(err, "message") ?? err.GetRawText() : "Codex turn failed.";
                    return [];
                case "error":
                    Error = Str(root, "message") ?? "Codex reported an error.";
                    return [new BuildLog(Error, "error")];
                case "item.started":
                case "item.updated":
                case "item.completed":
                    return root.TryGetProperty("item", out var item) ? Item(item, Str(root, "type") == "item.completed") : [];
                default:
                    return [];
            }
        }
    }

    private List<ProjectEvent> Item(JsonElement item, bool completed)
    {
        var id = Str(item, "id") ?? Guid.NewGuid().ToString("N");
        var type = Str(item, "type") ?? Str(item, "item_type");
        switch (type)
        {
            case "agent_message":
                return completed && Str(item, "text") is { Length: > 0 } text ? [new AgentMessage(text)] : [];
            case "todo_list":
                if (!item.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
                {
                    return [];
                }
                Todos = items.EnumerateArray()
                    .Select(t => new TodoItem(Str(t, "text") ?? "", t.TryGetProperty("completed", out var c) && c.ValueKind == JsonValueKind.True ? TodoStatuses.Completed : TodoStatuses.Pending))
                    .ToList();
                return [new TodosUpdated(Todos)];
            case "command_execution":
                return Tool(id, "Bash", Str(item, "command") ?? "", item, completed, () =>
                {
                    var exit = item.TryGetProperty("exit_code", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetInt32() : (int?)null;
                    return (exit is null or 0 && Str(item, "status") != "failed", ToolSummaries.Shorten(Str(item, "aggregated_output")));
                });
            case "file_change":
                var changes = item.TryGetProperty("changes", out var ch) && ch.ValueKind == JsonValueKind.Array
                    ? string.Join(", ", ch.EnumerateArray().Select(c => $"{Str(c, "kind")} {Relative(Str(c, "path"))}"))
                    : "";
                return Tool(id, "Edit", changes, item, completed, () => (Str(item, "status") != "failed", changes));
            case "mcp_tool_call":
                return Tool(id, $"{Str(item, "server")}/{Str(item, "tool")}", "", item, completed, () => (Str(item, "status") != "failed", ""));
            case "web_search":
                return Tool(id, "WebSearch", Str(item, "query") ?? "", item, completed, () => (true, ""));
            case "error":
                return completed ? [new BuildLog(Str(item, "message") ?? "Codex error", "error")] : [];
            default:
                return [];
        }
    }

    private List<ProjectEvent> Tool(string id, string name, string summary, JsonElement item, bool completed, Func<(bool Ok, string Result)> result)
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

    private string? Relative(string? path) =>
        path is not null && projectPath is not null && Path.IsPathRooted(path) ? Path.GetRelativePath(projectPath, path) : path;

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long Long(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.TryGetInt64(out var n) ? n : 0;
}
