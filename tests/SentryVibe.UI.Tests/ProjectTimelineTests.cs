using System.Text.Json;
using SentryVibe.Protocol;
using SentryVibe.Web.Services;
using SentryVibe.Web.Ui;

namespace SentryVibe.UI.Tests;

public sealed class ProjectTimelineTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static EventView E(long id, ProjectEvent body)
    {
        var json = JsonSerializer.SerializeToElement(body, LinkProtocol.JsonOptions);
        return new EventView(id, json.GetProperty("type").GetString()!, Guid.Empty, At, json);
    }

    [Fact]
    public void A_prompt_and_what_the_agent_did_form_one_turn_with_its_cost()
    {
        var timeline = new ProjectTimeline();

        timeline.Apply([
            E(1, new UserMessage("Create a todo app")),
            E(2, new BuildStarted("Create a todo app", "vite-react", Agents.ClaudeCode)),
            E(3, new AgentMessage("I'll **build** it.")),
            E(4, new ToolUse("t1", "Write", "src/App.tsx", ToolStatuses.Running)),
            E(5, new ToolUse("t1", "Write", "", ToolStatuses.Succeeded, "wrote 40 lines")),
            E(6, new BuildCompleted(3, 12_300, 0.0425m, 1000, 200)),
        ]);

        var turn = Assert.Single(timeline.Current.Turns);
        Assert.Equal("Create a todo app", turn.Prompt);
        Assert.Equal(TurnOutcome.Completed, turn.Outcome);
        Assert.Equal(0.0425m, turn.Cost!.CostUsd);
        Assert.Contains("<strong>build</strong>", Assert.IsType<AgentText>(turn.Items[0]).Html);
        var tool = Assert.IsType<ToolCall>(Assert.Single(turn.Items, i => i is ToolCall));
        Assert.Equal((ToolStatuses.Succeeded, "wrote 40 lines", "src/App.tsx"), (tool.Status, tool.Result, tool.Input));
    }

    [Fact]
    public void Events_read_twice_after_a_reconnect_are_not_doubled()
    {
        var timeline = new ProjectTimeline();
        var events = new[] { E(1, new UserMessage("hi")), E(2, new AgentMessage("hello")) };

        timeline.Apply(events);
        var changed = timeline.Apply(events);

        Assert.False(changed);
        Assert.Single(Assert.Single(timeline.Current.Turns).Items);
    }

    [Fact]
    public void A_follow_up_opens_a_new_turn_and_a_resume_without_prompt_does_too()
    {
        var timeline = new ProjectTimeline();

        timeline.Apply([
            E(1, new UserMessage("one")), E(2, new BuildStarted("one", "vite-react", Agents.None)), E(3, new BuildCompleted(1, 10, 0, 0, 0)),
            E(4, new UserMessage("two")), E(5, new BuildStarted("two", "vite-react", Agents.None, 2)), E(6, new BuildCompleted(1, 10, 0, 0, 0)),
            E(7, new BuildStarted("two", "vite-react", Agents.None, 3, "open todos")),
        ]);

        Assert.Equal([ "one", "two", null ], timeline.Current.Turns.Select(t => t.Prompt));
        Assert.True(timeline.Current.Turns[^1].IsRunning);
    }

    [Fact]
    public void Logs_and_checkpoints_go_to_their_own_lists()
    {
        var timeline = new ProjectTimeline();

        timeline.Apply([
            E(1, new BuildLog("Cloning template")),
            E(2, new DevServerStarting("npm run dev", 5173, "starting")),
            E(3, new DevServerLog("VITE ready")),
            E(4, new DevServerExited(1, ["boom"], "crashed")),
            E(5, new CheckpointCreated("abc123", "Turn 1", At, 1)),
        ]);

        Assert.Equal(["Cloning template"], timeline.Current.BuildLog.Select(l => l.Text));
        Assert.Equal(3, timeline.Current.DevServerLog.Count);
        Assert.Contains("code 1", timeline.Current.DevServerLog[^1].Text);
        Assert.Equal("abc123", Assert.Single(timeline.Current.Checkpoints).CheckpointId);
    }

    [Fact]
    public void Agent_markdown_cannot_carry_raw_html_or_script_links()
    {
        var html = Markdown.ToHtml("<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)");

        Assert.DoesNotContain("<script>", html);
        Assert.DoesNotContain("javascript:", html);
        Assert.Contains("href=\"https://example.com\"", html);
        Assert.Contains("rel=\"noopener noreferrer\"", html);
    }
}
