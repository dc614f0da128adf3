using System.Text.Json;

namespace SentryVibe.Runner.Agents;

/// <summary>Short, human-readable one-liners for tool inputs and results (the UI's tool cards).</summary>
public static class ToolSummaries
{
    public const int MaxLength = 300;

    public static string Input(string toolName, JsonElement input, string? projectPath = null)
    {
        if (input.ValueKind != JsonValueKind.Object)
        {
            return Shorten(input.ValueKind == JsonValueKind.Undefined ? "" : input.GetRawText());
        }
        string? Get(string name) => input.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        var summary = toolName switch
        {
            "Bash" or "run_command" => Get("command"),
            "Write" or "Edit" or "MultiEdit" or "Read" or "NotebookEdit" => Relative(Get("file_path") ?? Get("notebook_path"), projectPath),
            "read_file" or "write_file" or "list_files" => Get("path") ?? ".",
            "Glob" or "Grep" => Get("pattern"),
            "TaskCreate" => Get("subject"),
            "TaskUpdate" => string.Join(" ", new[] { "#" + Get("taskId"), Get("status"), Get("subject") }.Where(s => !string.IsNullOrEmpty(s))),
            "TodoWrite" => input.TryGetProperty("todos", out var todos) && todos.ValueKind == JsonValueKind.Array ? $"{todos.GetArrayLength()} todos" : null,
            "WebFetch" => Get("url"),
            "WebSearch" => Get("query"),
            "Task" or "Agent" => Get("description"),
            _ => null,
        };
        return Shorten(summary ?? input.GetRawText());
    }

    public static string Result(JsonElement content)
    {
        var text = content.ValueKind switch
        {
            JsonValueKind.String => content.GetString() ?? "",
            JsonValueKind.Array => string.Join("\n", content.EnumerateArray()
                .Where(b => b.ValueKind == JsonValueKind.Object && b.TryGetProperty("text", out _))
                .Select(b => b.GetProperty("text").GetString())),
            JsonValueKind.Undefined or JsonValueKind.Null => "",
            _ => content.GetRawText(),
        };
        return Shorten(text);
    }

    public static string Shorten(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        var trimmed = text.Trim();
        return trimmed.Length <= MaxLength ? trimmed : trimmed[..(MaxLength - 1)] + "…";
    }

    private static string? Relative(string? path, string? projectPath)
    {
        if (path is null || projectPath is null || !Path.IsPathRooted(path))
        {
            return path;
        }
        var relative = Path.GetRelativePath(projectPath, path);
        return relative.StartsWith("..", StringComparison.Ordinal) ? path : relative;
    }
}
