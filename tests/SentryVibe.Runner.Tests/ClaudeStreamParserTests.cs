using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>The stream-json parser against lines recorded from Claude Code 2.1 (task tools) and TodoWrite-era lines.</summary>
public sealed class ClaudeStreamParserTests
{
    private static List<ProjectEvent> ParseRecorded(ClaudeStreamParser parser) =>
        File.ReadLines(Path.Join(AppContext.BaseDirectory, "Recorded", "claude-tasks.jsonl")).SelectMany(parser.Parse).ToList();

    [Fact]
    public void Init_line_gives_session_id_tools_and_a_log_line()
    {
        var parser = new ClaudeStreamParser("/work/demo");
        var events = ParseRecorded(parser);

        Assert.Equal("ee761d2b-b2bc-47a0-b219-2c26e666a339", parser.SessionId);
        Assert.Contains("TaskCreate", parser.Tools);
        Assert.IsType<BuildLog>(events[0]);
    }

    [Fact]
    public void Tool_calls_are_reported_running_then_succeeded_with_a_result_summary()
    {
        var events = ParseRecorded(new ClaudeStreamParser("/work/demo"));

        var write = events.OfType<ToolUse>().Where(t => t.Name == "Write").ToList();
        Assert.Equal([ToolStatuses.Running, ToolStatuses.Succeeded], write.Select(w => w.Status));
        Assert.All(write, w => Assert.Equal("hello.txt", w.InputSummary));
        Assert.Contains("File created successfully", write[1].ResultSummary);

        var bash = events.OfType<ToolUse>().Single(t => t.Name == "Bash" && t.Status == ToolStatuses.Succeeded);
        Assert.Equal("ls -la", bash.InputSummary);
        Assert.Contains("hello.txt", bash.ResultSummary);
    }

    [Fact]
    public void Task_tools_build_a_todo_list_keyed_by_task_id()
    {
        var parser = new ClaudeStreamParser("/work/demo");
        var todos = ParseRecorded(parser).OfType<TodosUpdated>().ToList();

        // Created #1, created #2, #1 in progress, TaskList (stale: #1 still in progress), #1 completed.
        Assert.Equal(5, todos.Count);
        Assert.Equal(["Write app"], todos[0].Todos.Select(t => t.Content));
        Assert.Equal("Writing app", todos[0].Todos[0].ActiveForm);
        Assert.Equal(["Write app", "Run check"], todos[1].Todos.Select(t => t.Content));
        Assert.Equal(TodoStatuses.InProgress, todos[2].Todos[0].Status);
        Assert.Equal([TodoStatuses.Completed, TodoStatuses.Pending], parser.Todos.Select(t => t.Status));
    }

    [Fact]
    public void Assistant_text_becomes_agent_messages_and_the_result_line_gives_cost_tokens_and_turns()
    {
        var parser = new ClaudeStreamParser("/work/demo");
        var events = ParseRecorded(parser);

        Assert.Equal(["Planning", "Done."], events.OfType<AgentMessage>().Select(m => m.Text));
        var result = Assert.IsType<ClaudeRunResult>(parser.Result);
        Assert.False(result.IsError);
        Assert.Equal(0.0007m, result.CostUsd);
        Assert.Equal(40, result.InputTokens);
        Assert.Equal(20, result.OutputTokens);
        Assert.Equal(8, result.NumTurns);
    }

    [Fact]
    public void TodoWrite_input_replaces_the_todo_list()
    {
        var parser = new ClaudeStreamParser("/p");
        var events = parser.Parse("""
            {"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"TodoWrite","input":{"todos":[
              {"content":"Scaffold layout","status":"completed","activeForm":"Scaffolding layout"},
              {"content":"Add todo list","status":"in_progress","activeForm":"Adding todo list"},
              {"content":"Style it","status":"pending","activeForm":"Styling"}]}}]},"session_id":"s1"}
            """.ReplaceLineEndings(""));

        var update = Assert.Single(events.OfType<TodosUpdated>());
        Assert.Equal([TodoStatuses.Completed, TodoStatuses.InProgress, TodoStatuses.Pending], update.Todos.Select(t => t.Status));
        Assert.Equal(2, parser.Todos.Count(t => t.Status != TodoStatuses.Completed));
    }

    [Fact]
    public void A_failed_tool_result_is_reported_failed_and_does_not_change_todos()
    {
        var parser = new ClaudeStreamParser("/p");
        parser.Parse("""{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"TaskUpdate","input":{"taskId":"9","status":"completed"}}]}}""");
        var events = parser.Parse("""{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"Task not found"}]}}""");

        var tool = Assert.Single(events.OfType<ToolUse>());
        Assert.Equal(ToolStatuses.Failed, tool.Status);
        Assert.Equal("Task not found", tool.ResultSummary);
        Assert.Empty(events.OfType<TodosUpdated>());
    }

    [Fact]
    public void Todo_state_carries_over_to_the_next_turn_of_the_session()
    {
        var first = new ClaudeStreamParser("/work/demo");
        ParseRecorded(first);

        var next = new ClaudeStreamParser("/work/demo", first.Snapshot);
        next.Parse("""{"type":"assistant","message":{"content":[{"type":"tool_use","id":"u1","name":"TaskUpdate","input":{"taskId":"2","status":"completed"}}]}}""");
        var events = next.Parse("""{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"u1","content":"Updated task #2 status"}]},"tool_use_result":{"success":true,"taskId":"2"}}""");

        var update = Assert.Single(events.OfType<TodosUpdated>());
        Assert.All(update.Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
    }

    [Fact]
    public void An_error_result_is_an_error_with_its_message()
    {
        var parser = new ClaudeStreamParser();
        parser.Parse("""{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":30,"session_id":"s","total_cost_usd":1.5,"errors":["Reached maximum number of turns"]}""");

        Assert.True(parser.Result!.IsError);
        Assert.Equal("error_max_turns", parser.Result.Subtype);
        Assert.Contains("maximum number of turns", parser.Result.Text);
    }

    [Fact]
    public void Lines_that_are_not_json_become_warnings_instead_of_failures()
    {
        var events = new ClaudeStreamParser().Parse("npm WARN something odd");
        Assert.Equal("warn", Assert.IsType<BuildLog>(Assert.Single(events)).Level);
    }
}
