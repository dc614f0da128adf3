using SentryVibe.Protocol;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// The one check of a build request (Protocol's StartBuildRules), as a table: Web's POST /api/projects and the runner's
/// StartBuild both call it, so these rows are what either side accepts or refuses. The two sides' own tests
/// (ProjectsApiTests, BuildCommandTests) show that each one answers with it.
/// </summary>
public sealed class StartBuildRulesTests
{
    private const string Url = "https://github.com/example/starter.git";

    public static TheoryData<string, string?, string?, string?, string?, string> Refused() => new()
    {
        // because, prompt, templateId, templateUrl, agent, the field refused
        { "no prompt", null, null, null, null, "prompt" },
        { "blank prompt", " \n ", null, null, null, "prompt" },
        { "unknown template", "todo app", "cobol-on-cogs", null, null, "templateId" },
        { "template URL that is no repository", "todo app", null, "not a repository", null, "templateUrl" },
        { "relative template path", "todo app", null, "relative/path", null, "templateUrl" },
        { "template id and template URL together", "todo app", "vite-react", Url, null, "templateUrl" },
        { "unknown agent", "todo app", null, null, "skynet", "agent" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_bad_request_is_refused_on_the_field_at_fault(string because, string? prompt, string? templateId, string? templateUrl, string? agent, string field)
    {
        var check = StartBuildRules.Check(prompt, templateId, templateUrl, agent);

        Assert.False(check.IsValid, because);
        Assert.Equal(new[] { field }, check.Errors.Keys);
        Assert.Equal(check.Errors[field], check.FirstError);
    }

    public static TheoryData<string, string?, string?, string?, string?, string?> Accepted() => new()
    {
        // because, templateId, templateUrl, agent, the template used (null: the git template), the agent asked for (null: the default)
        { "nothing chosen: the template from the prompt, the default agent", null, null, null, "vite-react", null },
        { "blank fields count as absent", "  ", "", "", "vite-react", null },
        { "a known template in any case", " Vite-React ", null, null, "vite-react", null },
        { "a git template", null, $" {Url} ", null, null, null },
        { "an agent in any case", null, null, "Claude-Code", "vite-react", AgentNames.ClaudeCode },
        { "the default agent's alias", null, null, "default", "vite-react", null },
        { "the automatic agent's alias", null, null, "AUTO", "vite-react", null },
        { "no agent at all", null, null, AgentNames.None, "vite-react", AgentNames.None },
    };

    [Theory]
    [MemberData(nameof(Accepted))]
    public void A_good_request_says_what_it_asks_for(string because, string? templateId, string? templateUrl, string? agent, string? template, string? agentName)
    {
        var check = StartBuildRules.Check("Create a todo app", templateId, templateUrl, agent);

        Assert.True(check.IsValid, $"{because}: {check.FirstError}");
        Assert.Equal(template, check.Template?.Id);
        Assert.Equal(string.IsNullOrWhiteSpace(templateUrl) ? null : Url, check.TemplateUrl);
        Assert.Equal(agentName, check.Agent);
        Assert.Equal("Create a todo app", check.Prompt);
    }

    [Fact]
    public void Several_problems_are_each_named_and_the_first_is_the_prompt()
    {
        var check = StartBuildRules.Check("", "nope", null, "skynet");

        Assert.Equal(new[] { "agent", "prompt", "templateId" }, check.Errors.Keys.Order());
        Assert.Equal(StartBuildRules.EmptyPrompt, check.FirstError);
    }

    [Fact]
    public void An_agent_the_asking_side_cannot_run_is_refused_with_the_ones_it_can()
    {
        var check = StartBuildRules.Check("todo app", null, null, AgentNames.Codex, [AgentNames.ClaudeCode, AgentNames.None]);

        Assert.Equal("Unknown agent 'codex'. Known agents: claude-code, none.", check.Errors["agent"]);
    }
}
