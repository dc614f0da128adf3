using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;

namespace SentryVibe.Runner.Tests;

public sealed class CodexEventParserTests
{
    [Fact]
    public void Codex_jsonl_becomes_messages_tool_uses_todos_and_usage()
    {
        var parser = new CodexEventParser("/p");
        string[] lines =
        [
            """{"type":"thread.started","thread_id":"th_1"}""",
            """{"type":"turn.started"}""",
            """{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}""",
            """{"type":"item.started","item":{"id":"item_1","type":"todo_list","items":[{"text":"Create app","completed":false},{"text":"Style","completed":false}]}}""",
            """{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"bash -lc 'npm install'","aggregated_output":"","status":"in_progress"}}""",
            """{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"bash -lc 'npm install'","aggregated_output":"added 3 packages","exit_code":0,"status":"completed"}}""",
            """{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"/p/src/App.tsx","kind":"update"}],"status":"completed"}}""",
            """{"type":"item.updated","item":{"id":"item_1","type":"todo_list","items":[{"text":"Create app","completed":true},{"text":"Style","completed":true}]}}""",
            """{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"All done."}}""",
            """{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":200,"output_tokens":300}}""",
        ];
        var events = lines.SelectMany(parser.Parse).ToList();

        Assert.Equal("th_1", parser.ThreadId);
        Assert.True(parser.Completed);
        // The API's input_tokens already includes the cached ones.
        Assert.Equal(1000, parser.InputTokens);
        Assert.Equal(300, parser.OutputTokens);
        Assert.Equal("All done.", Assert.Single(events.OfType<AgentMessage>()).Text);
        var bash = events.OfType<ToolUse>().Where(t => t.Name == "Bash").ToList();
        Assert.Equal([ToolStatuses.Running, ToolStatuses.Succeeded], bash.Select(b => b.Status));
        Assert.Equal("added 3 packages", bash[1].ResultSummary);
        Assert.Contains(events.OfType<ToolUse>(), t => t.Name == "Edit" && t.InputSummary == "update src/App.tsx");
        Assert.All(events.OfType<TodosUpdated>().Last().Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
    }

    [Fact]
    public void A_recorded_codex_0_169_run_becomes_one_plan_per_change_tool_uses_and_its_tokens()
    {
        // codex exec --json of the real CLI 0.169.0 against the scripted Responses API (update_plan, exec_command,
        // apply_patch, a second exec_command left out here, update_plan, message).
        var parser = new CodexEventParser("/work/demo");
        var events = File.ReadLines(Path.Join(AppContext.BaseDirectory, "Recorded", "codex-exec.jsonl")).SelectMany(parser.Parse).ToList();

        Assert.Equal("01a24224-405e-71d2-b5f3-5dcefe2c7968", parser.ThreadId);
        Assert.True(parser.Completed);
        Assert.Equal((720, 240), (parser.InputTokens, parser.OutputTokens));
        var plans = events.OfType<TodosUpdated>().ToList();
        Assert.Equal(2, plans.Count); // the closing item.completed repeats the last list
        Assert.Equal(["Write hello", "Check"], plans[0].Todos.Select(t => t.Content));
        Assert.All(plans[1].Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
        Assert.Equal(
            ["Bash running echo hello > hello.txt && ls", "Bash succeeded echo hello > hello.txt && ls", "Edit running add app.txt", "Edit succeeded add app.txt"],
            events.OfType<ToolUse>().Select(t => $"{t.Name} {t.Status} {t.InputSummary}"));
        Assert.Equal("All done.", Assert.Single(events.OfType<AgentMessage>()).Text);
    }

    [Fact]
    public void A_resumed_thread_counts_only_the_tokens_of_its_own_turn()
    {
        // Codex 0.169 reports the thread's running total at turn.completed.
        var parser = new CodexEventParser("/p", new CodexUsage(720, 240));
        parser.Parse("""{"type":"turn.completed","usage":{"input_tokens":840,"cached_input_tokens":140,"output_tokens":280}}""");
        Assert.Equal(120, parser.InputTokens);
        Assert.Equal(40, parser.OutputTokens);
        Assert.Equal(new CodexUsage(840, 280), parser.Totals);
    }

    [Fact]
    public void Retry_notices_and_warning_items_are_logged_without_failing_the_turn()
    {
        var parser = new CodexEventParser("/p");
        var events = new[]
        {
            """{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion)"}""",
            """{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `x` not found."}}""",
            """{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'echo hi > a.txt'","aggregated_output":"","exit_code":0,"status":"completed"}}""",
            """{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":5}}""",
        }.SelectMany(parser.Parse).ToList();

        Assert.True(parser.Completed);
        Assert.Null(parser.Error);
        Assert.All(events.OfType<BuildLog>(), l => Assert.Equal("warn", l.Level));
        Assert.Equal("echo hi > a.txt", events.OfType<ToolUse>().Last().InputSummary);
    }

    [Fact]
    public void A_failed_turn_reports_its_error()
    {
        var parser = new CodexEventParser();
        parser.Parse("""{"type":"turn.failed","error":{"message":"stream disconnected"}}""");
        Assert.Equal("stream disconnected", parser.Error);
        Assert.False(parser.Completed);
    }
}
