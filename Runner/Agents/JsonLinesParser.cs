using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The one front for the CLI agents' JSON-lines output (Claude Code's stream-json, Codex's <c>exec --json</c>): a line
/// becomes a JSON object, blank lines are skipped, a line that is not JSON is shown as a build log line (CLIs print
/// the odd warning on stdout), anything else goes to the agent's own <see cref="Map"/>. Stateful per turn.
/// </summary>
public abstract class JsonLinesParser
{
    /// <summary>The build log level for a line that is not JSON.</summary>
    protected abstract string NotJsonLevel { get; }

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
            return [new BuildLog(ToolSummaries.Shorten(line), NotJsonLevel)];
        }
        using (document)
        {
            return document.RootElement.ValueKind == JsonValueKind.Object ? Map(document.RootElement) : [];
        }
    }

    /// <summary>The events one JSON object stands for. The element is only valid during the call (clone to keep it).</summary>
    protected abstract IReadOnlyList<ProjectEvent> Map(JsonElement line);

    protected static string? String(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    protected static long Long(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;
}
