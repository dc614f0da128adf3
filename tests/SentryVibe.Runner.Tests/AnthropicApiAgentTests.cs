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
        // Three model calls of 120 input and 40 output tokens each, at the default $3 / $15 per million.
        Assert.Equal(3, _model.Requests.Count);
        Assert.Equal(3 * 120, completed.InputTokens);
        Assert.Equal(3 * 40, completed.OutputTokens);
        Assert.Equal((360 * 3m + 120 * 15m) / 1_000_000m, completed.CostUsd);
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

    [Fact]
    public async Task A_follow_up_turn_of_the_api_agent_carries_the_earlier_conversation_and_counts_its_own_tokens()
    {
        var command = new StartBuild(Guid.NewGuid(), "api-follow", "Create a counter app", "vite-react", AgentNames.Anthropic, StartDevServerWhenReady: false);
        var project = _runner.ProjectPath("api-follow");
        _model.Enqueue(ToolUse("write_file", new { path = "first.txt", content = "first" })).EnqueueText("Built it.");
        await _runner.AcceptAsync(command);
        var first = Assert.IsType<BuildCompleted>((await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout))[^1]);
        var requestsBefore = _model.Requests.Count;

        _model.Enqueue(ToolUse("write_file", new { path = "second.txt", content = "second" })).EnqueueText("Added it.");
        await _runner.AcceptAsync(new FollowUpTurn(command.ProjectId, "Add a reset button"));
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout, count: 2);

        var second = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(first.SessionId, second.SessionId);
        Assert.Equal(2, events.OfType<BuildStarted>().Last().Turn);
        Assert.Equal("second", File.ReadAllText(Path.Join(project, "second.txt")));
        Assert.Contains(events.OfType<ToolUse>(), t => t.Name == "write_file" && t.InputSummary == "second.txt" && t.Status == ToolStatuses.Succeeded);
        // The follow-up's first model call carries turn 1: its prompt, its tool call and result, its answer.
        var followUp = _model.Requests.Skip(requestsBefore).ToList();
        Assert.Equal(2, followUp.Count);
        Assert.Contains("Create a counter app", followUp[0].AllText);
        Assert.Contains("Wrote first.txt.", followUp[0].AllText);
        Assert.Contains("Built it.", followUp[0].AllText);
        Assert.Contains("Add a reset button", followUp[0].AllText);
        Assert.True(followUp[0].MessageCount > _model.Requests[requestsBefore - 1].MessageCount);
        // The turn counts its own two model calls only.
        Assert.Equal(2 * 120, second.InputTokens);
        Assert.Equal(2 * 40, second.OutputTokens);
        Assert.Equal((240 * 3m + 80 * 15m) / 1_000_000m, second.CostUsd);
    }
}
