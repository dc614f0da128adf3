using System.Text.Json;
using System.Text.RegularExpressions;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>Todo state carried from one turn of a session to the next (task ids stay valid across --resume).</summary>
public sealed record ClaudeTodoSnapshot(IReadOnlyList<KeyValuePair<string, TodoItem>> Tasks, IReadOnlyList<TodoItem>? TodoWrite);

/// <summary>The final <c>result</c> line of a Claude Code run.</summary>
public sealed record ClaudeRunResult(
    bool IsError,
    string Subtype,
    string? Text,
    decimal CostUsd,
    long InputTokens,
    long OutputTokens,
    int NumTurns,
    string? SessionId);

/// <summary>
/// Turns Claude Code's <c>--output-format stream-json</c> lines into typed events. Stateful per run: it pairs
/// tool calls with their results and keeps the todo list, both the TodoWrite list and the task list of
/// TaskCreate/TaskUpdate/TaskList (keyed by task id, in creation order).
/// </summary>
public sealed partial class ClaudeStreamParser(string? projectPath = null, ClaudeTodoSnapshot? resumeFrom = null) : JsonLinesParser
{
    private readonly Dictionary<string, PendingTool> _pending = [];
    private readonly List<(string Id, TodoItem Item)> _tasks = resumeFrom?.Tasks.Select(t => (t.Key, t.Value)).ToList() ?? [];
    private List<TodoItem>? _todoWriteList = resumeFrom?.TodoWrite?.ToList();

    /// <summary>The todo state to hand to the parser of the next turn of the same session.</summary>
    public ClaudeTodoSnapshot Snapshot => new(_tasks.Select(t => KeyValuePair.Create(t.Id, t.Item)).ToList(), _todoWriteList);

    public string? SessionId { get; private set; }

    public string? Model { get; private set; }

    public IReadOnlyList<string> Tools { get; private set; } = [];

    public ClaudeRunResult? Result { get; private set; }

    /// <summary>The current todo list: the task list when the agent used tasks, else the last TodoWrite list.</summary>
    public IReadOnlyList<TodoItem> Todos => _tasks.Count > 0 ? _tasks.Select(t => t.Item).ToList() : _todoWriteList ?? [];

    protected override string NotJsonLevel => "warn";

    protected override IReadOnlyList<ProjectEvent> Map(JsonElement root)
    {
        if (root.TryGetProperty("session_id", out var sid) && sid.ValueKind == JsonValueKind.String)
        {
            SessionId = sid.GetString();
        }
        return String(root, "type") switch
        {
            "system" => System(root),
            "assistant" => Assistant(root),
            "user" => User(root),
            "result" => ResultLine(root),
            _ => [],
        };
    }

    private List<ProjectEvent> System(JsonElement root)
    {
        if (String(root, "subtype") != "init")
        {
            return [];
        }
        Model = String(root, "model");
        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            Tools = tools.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!).ToList();
        }
        var version = String(root, "claude_code_version");
        return [new BuildLog($"Claude Code {version} started (model {Model ?? "default"}, session {SessionId}).")];
    }

    private List<ProjectEvent> Assistant(JsonElement root)
    {
        var events = new List<ProjectEvent>();
        if (!root.TryGetProperty("message", out var message) || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return events;
        }
        foreach (var block in content.EnumerateArray())
        {
            switch (String(block, "type"))
            {
                case "text":
                    var text = String(block, "text");
                    if (!string.IsNullOrWhiteSpace(text))
                    {
                        events.Add(new AgentMessage(text));
                    }
                    break;
                case "tool_use":
                    var id = String(block, "id") ?? Guid.NewGuid().ToString("N");
                    var name = String(block, "name") ?? "tool";
                    var input = block.TryGetProperty("input", out var i) ? i.Clone() : default;
                    var summary = ToolSummaries.Input(name, input, projectPath);
                    _pending[id] = new PendingTool(name, input, summary);
                    events.Add(new ToolUse(id, name, summary, ToolStatuses.Running));
                    if (name == "TodoWrite" && TodoWriteList(input) is { } list)
                    {
                        _todoWriteList = list;
                        if (_tasks.Count == 0)
                        {
                            events.Add(new TodosUpdated(list));
                        }
                    }
                    break;
            }
        }
        return events;
    }

    private List<ProjectEvent> User(JsonElement root)
    {
        var events = new List<ProjectEvent>();
        if (!root.TryGetProperty("message", out var message) || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return events;
        }
        var structured = root.TryGetProperty("tool_use_result", out var r) ? r : default;
        foreach (var block in content.EnumerateArray())
        {
            if (String(block, "type") != "tool_result")
            {
                continue;
            }
            var id = String(block, "tool_use_id") ?? "";
            var isError = block.TryGetProperty("is_error", out var e) && e.ValueKind == JsonValueKind.True;
            var resultContent = block.TryGetProperty("content", out var c) ? c : default;
            var resultText = ToolSummaries.Result(resultContent);
            if (!_pending.Remove(id, out var tool))
            {
                tool = new PendingTool("tool", default, "");
            }
            events.Add(new ToolUse(id, tool.Name, tool.Summary, isError ? ToolStatuses.Failed : ToolStatuses.Succeeded, resultText));
            if (!isError && ApplyTaskResult(tool, resultText, structured))
            {
                events.Add(new TodosUpdated(Todos));
            }
        }
        return events;
    }

    private List<ProjectEvent> ResultLine(JsonElement root)
    {
        long input = 0, output = 0;
        if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            input = Long(usage, "input_tokens") + Long(usage, "cache_creation_input_tokens") + Long(usage, "cache_read_input_tokens");
            output = Long(usage, "output_tokens");
        }
        var cost = root.TryGetProperty("total_cost_usd", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDecimal() : 0m;
        var isError = root.TryGetProperty("is_error", out var e) && e.ValueKind == JsonValueKind.True;
        var subtype = String(root, "subtype") ?? "unknown";
        var text = String(root, "result");
        if (!isError && subtype != "success")
        {
            isError = true;
        }
        if (isError && string.IsNullOrWhiteSpace(text) && root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
        {
            text = string.Join("; ", errors.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() : x.GetRawText()));
        }
        Result = new ClaudeRunResult(isError, subtype, text, cost, input, output, (int)Long(root, "num_turns"), SessionId);
        return [];
    }

    /// <summary>Updates the task list from a successful Task* result; true when it changed.</summary>
    private bool ApplyTaskResult(PendingTool tool, string resultText, JsonElement structured)
    {
        switch (tool.Name)
        {
            case "TaskCreate":
                var id = structured.ValueKind == JsonValueKind.Object && structured.TryGetProperty("task", out var task) ? String(task, "id") : null;
                id ??= TaskNumber().Match(resultText) is { Success: true } m ? m.Groups[1].Value : null;
                if (id is null)
                {
                    return false;
                }
                _tasks.RemoveAll(t => t.Id == id);
                _tasks.Add((id, new TodoItem(String(tool.Input, "subject") ?? resultText, TodoStatuses.Pending, String(tool.Input, "activeForm"))));
                return true;

            case "TaskUpdate":
                var taskId = String(tool.Input, "taskId");
                if (taskId is null)
                {
                    return false;
                }
                var index = _tasks.FindIndex(t => t.Id == taskId);
                if (index < 0)
                {
                    // A task of an earlier run of this session that this runner does not know (e.g. after a restart).
                    _tasks.Add((taskId, new TodoItem(String(tool.Input, "subject") ?? $"Task #{taskId}", TodoStatuses.Pending)));
                    index = _tasks.Count - 1;
                }
                var status = String(tool.Input, "status");
                if (status == "deleted")
                {
                    _tasks.RemoveAt(index);
                    return true;
                }
                var current = _tasks[index].Item;
                _tasks[index] = (taskId, current with
                {
                    Status = NormalizeStatus(status) ?? current.Status,
                    Content = String(tool.Input, "subject") ?? current.Content,
                    ActiveForm = String(tool.Input, "activeForm") ?? current.ActiveForm,
                });
                return true;

            case "TaskList":
                if (structured.ValueKind != JsonValueKind.Object || !structured.TryGetProperty("tasks", out var tasks) || tasks.ValueKind != JsonValueKind.Array)
                {
                    return false;
                }
                var listed = new List<(string, TodoItem)>();
                foreach (var t in tasks.EnumerateArray())
                {
                    var tid = String(t, "id");
                    if (tid is null)
                    {
                        continue;
                    }
                    var previous = _tasks.FirstOrDefault(x => x.Id == tid).Item;
                    listed.Add((tid, new TodoItem(String(t, "subject") ?? previous?.Content ?? tid, NormalizeStatus(String(t, "status")) ?? TodoStatuses.Pending, previous?.ActiveForm)));
                }
                _tasks.Clear();
                _tasks.AddRange(listed);
                return true;

            default:
                return false;
        }
    }

    private static List<TodoItem>? TodoWriteList(JsonElement input)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty("todos", out var todos) || todos.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        return todos.EnumerateArray()
            .Where(t => t.ValueKind == JsonValueKind.Object)
            .Select(t => new TodoItem(String(t, "content") ?? "", NormalizeStatus(String(t, "status")) ?? TodoStatuses.Pending, String(t, "activeForm")))
            .ToList();
    }

    private static string? NormalizeStatus(string? status) => status switch
    {
        "pending" => TodoStatuses.Pending,
        "in_progress" or "in-progress" => TodoStatuses.InProgress,
        "completed" or "done" => TodoStatuses.Completed,
        _ => null,
    };

    [GeneratedRegex(@"Task #(\w+)")]
    private static partial Regex TaskNumber();

    private sealed record PendingTool(string Name, JsonElement Input, string Summary);
}
