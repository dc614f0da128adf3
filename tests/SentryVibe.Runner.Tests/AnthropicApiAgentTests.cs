using SentryVibe.Protocol;
using SentryVibe.Testing;
using static SentryVibe.Testing.ScriptedBlock;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>The Anthropic API agent (official SDK) with its tool loop, against the scripted Messages API.</summary>
public sealed class AnthropicApiAgentTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private ScriptedAnthropicServer _model = null!;
    private RunnerHarness _runner = null!;

    public async Task InitializeAsync()
    {
        _model = await ScriptedAnthropicServer.StartAsync();
        _runner = RunnerHarness.Create(new Dictionary<string, string?>
        {
            ["Agents:AnthropicBaseUrl"] = _model.BaseUrl,
            ["Agents:AnthropicApiKey"] = "sk-test",
        });
    }

    public async Task DisposeAsync()
    {
        await _runner.DisposeAsync();
        await _model.DisposeAsync();
    }

    [Fact]
    public async Task The_api_agent_writes_files_runs_commands_and_cannot_write_outside_the_project()
    {
        var command = new StartBuild(Guid.NewGuid(), "api-app", "Create a React todo app", "vite-react", AgentNames.Anthropic, StartDevServerWhenReady: false);
        var project = _runner.ProjectPath("api-app");
        _model
            .Enqueue(
                Text("Planning."),
                ToolUse("update_todos", new { todos = new[] { new { content = "Write the page", status = "in_progress" } } }),
                ToolUse("write_file", new { path = "src/Todo.tsx", content = "export const Todo = () => null\n" }),
                ToolUse("write_file", new { path = "../escape.txt", content = "should not exist" }))
            .Enqueue(
                ToolUse("run_command", new { command = "ls src > listing.txt" }),
                ToolUse("update_todos", new { todos = new[] { new { content = "Write the page", status = "completed" } } }))
            .EnqueueText("Done.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        var completed = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.True(completed.CostUsd > 0);
        Assert.Equal("export const Todo = () => null\n", File.ReadAllText(Path.Join(project, "src", "Todo.tsx")));
        Assert.Contains("Todo.tsx", File.ReadAllText(Path.Join(project, "listing.txt")));
        Assert.False(File.Exists(Path.Join(_runner.WorkspaceRoot, "escape.txt")));
        var escape = events.OfType<ToolUse>().Single(t => t.InputSummary == "../escape.txt" && t.Status != ToolStatuses.Running);
        Assert.Equal(ToolStatuses.Failed, escape.Status);
        Assert.Contains("outside the project", escape.ResultSummary);
        Assert.All(events.OfType<TodosUpdated>().Last().Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
        Assert.Contains(events.OfType<AgentMessage>(), m => m.Text == "Done.");
        Assert.All(_model.Requests, r => Assert.False(r.Stream));
    }
}
