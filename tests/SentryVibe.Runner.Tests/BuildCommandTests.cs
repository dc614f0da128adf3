using SentryVibe.Protocol;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>The command handler and build engine with the "none" agent: scaffolding, metadata, checkpoints, bad input.</summary>
public sealed class BuildCommandTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private RunnerHarness _runner = null!;

    public Task InitializeAsync()
    {
        _runner = RunnerHarness.Create();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _runner.DisposeAsync();

    private static StartBuild Build(string slug, string template = "vite-react", string agent = AgentNames.None, string prompt = "Create a React todo app", string? url = null) =>
        new(Guid.NewGuid(), slug, prompt, template, agent, url, StartDevServerWhenReady: false);

    [Fact]
    public async Task A_build_without_agent_scaffolds_the_template_checkpoints_it_and_completes()
    {
        var command = Build("todo-app");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        var completed = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(1, completed.Turns);
        var started = Assert.IsType<BuildStarted>(events[0]);
        Assert.Equal((command.Prompt, "vite-react", AgentNames.None, 1), (started.Prompt, started.TemplateId, started.Agent, started.Turn));
        var scaffold = events.OfType<CheckpointCreated>().First();
        Assert.Equal("Scaffold vite-react", scaffold.Message);
        var metadata = events.OfType<ProjectMetadata>().First();
        Assert.Equal(("vite", "npm run dev", 5173, _runner.ProjectPath("todo-app")), (metadata.Framework, metadata.RunCommand, metadata.Port, metadata.Path));
        Assert.True(events.IndexOf(scaffold) < events.IndexOf(metadata));
        Assert.True(File.Exists(Path.Join(_runner.ProjectPath("todo-app"), "src", "App.tsx")));
        Assert.Equal(scaffold.CheckpointId, _runner.Checkpoints.List(_runner.ProjectPath("todo-app")).Single().Id);
    }

    [Fact]
    public async Task An_empty_template_id_is_chosen_from_the_prompt()
    {
        var command = Build("blog", template: "", prompt: "A personal blog with Astro");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.Equal("astro", events.OfType<ProjectMetadata>().First().TemplateId);
        Assert.True(File.Exists(Path.Join(_runner.ProjectPath("blog"), "src", "pages", "index.astro")));
    }

    [Theory]
    [InlineData("../x", "slug")]
    [InlineData("/tmp/evil", "slug")]
    [InlineData("UPPER", "slug")]
    public async Task A_slug_that_is_not_a_plain_folder_name_is_refused_and_nothing_is_written(string slug, string expected)
    {
        var ack = await _runner.SendAsync(Build(slug));

        Assert.False(ack.Accepted);
        Assert.Contains(expected, ack.Error);
        Assert.Empty(_runner.StrayEntries());
        Assert.False(Directory.Exists(_runner.WorkspaceRoot) && Directory.EnumerateFileSystemEntries(_runner.WorkspaceRoot).Any());
    }

    [Fact]
    public async Task An_unknown_template_is_refused_with_the_known_ones()
    {
        var ack = await _runner.SendAsync(Build("x", template: "angular"));

        Assert.False(ack.Accepted);
        Assert.Contains("Unknown template 'angular'", ack.Error);
        Assert.Contains("vite-react", ack.Error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task An_empty_prompt_is_refused(string prompt)
    {
        var ack = await _runner.SendAsync(Build("x", prompt: prompt));

        Assert.False(ack.Accepted);
        Assert.Equal("The prompt is empty.", ack.Error);
    }

    [Fact]
    public async Task An_unknown_agent_is_refused()
    {
        var ack = await _runner.SendAsync(Build("x", agent: "gpt-9"));

        Assert.False(ack.Accepted);
        Assert.Contains("Unknown agent 'gpt-9'", ack.Error);
    }

    [Fact]
    public async Task A_template_id_with_a_template_url_is_refused_as_the_web_refuses_it_and_nothing_is_written()
    {
        var ack = await _runner.SendAsync(Build("x", template: "vite-react", url: "https://github.com/example/starter.git"));

        Assert.False(ack.Accepted);
        Assert.Equal(StartBuildRules.TemplateAndUrl, ack.Error);
        Assert.Empty(_runner.StrayEntries());
    }

    [Fact]
    public async Task The_default_agent_alias_is_accepted_and_builds_with_this_runners_default()
    {
        await using var runner = RunnerHarness.Create(new Dictionary<string, string?> { ["Agents:Default"] = AgentNames.None });
        var command = Build("aliased", agent: "Default");

        await runner.AcceptAsync(command);
        var events = await runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.Equal(AgentNames.None, Assert.IsType<BuildStarted>(events[0]).Agent);
        Assert.IsType<BuildCompleted>(events[^1]);
    }

    [Fact]
    public async Task A_local_template_repository_that_does_not_exist_is_refused_before_anything_is_written()
    {
        var ack = await _runner.SendAsync(Build("x", template: "", url: Path.Join(_runner.Sandbox, "missing-repo")));

        Assert.False(ack.Accepted);
        Assert.Contains("does not exist", ack.Error);
        Assert.Empty(_runner.StrayEntries());
    }

    [Fact]
    public async Task An_unreachable_template_repository_fails_the_build_and_leaves_no_folder()
    {
        var command = Build("remote", template: "", url: "http://127.0.0.1:9/template.git");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.Contains("Could not clone", Assert.IsType<BuildFailed>(events[^1]).Reason);
        Assert.False(Directory.Exists(_runner.ProjectPath("remote")));
        Assert.Empty(_runner.StrayEntries());
    }

    [Fact]
    public async Task A_slug_used_by_another_project_is_refused()
    {
        var first = Build("taken");
        await _runner.AcceptAsync(first);
        await _runner.Events.WaitForEndAsync(first.ProjectId, Timeout);

        var ack = await _runner.SendAsync(Build("taken"));

        Assert.False(ack.Accepted);
        Assert.Contains("another project", ack.Error);
    }

    [Fact]
    public async Task A_missing_agent_cli_falls_back_to_scaffolding_only_with_a_visible_notice()
    {
        await using var runner = RunnerHarness.Create(new Dictionary<string, string?> { ["Agents:ClaudeCode:Executable"] = "claude-not-installed-here" });
        var command = Build("fallback", agent: AgentNames.ClaudeCode);

        await runner.AcceptAsync(command);
        var events = await runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(AgentNames.None, events.OfType<BuildStarted>().Single().Agent);
        Assert.Contains(events.OfType<BuildLog>(), l => l.Level == "warn" && l.Message.Contains("npm install -g @anthropic-ai/claude-code"));
    }

    [Fact]
    public async Task Restoring_a_checkpoint_through_the_handler_brings_back_its_files_as_a_new_checkpoint()
    {
        var command = Build("restore-me");
        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        var scaffold = events.OfType<CheckpointCreated>().First();
        var app = Path.Join(_runner.ProjectPath("restore-me"), "src", "App.tsx");
        var original = File.ReadAllText(app);
        File.WriteAllText(app, "export default function App() { return null }");
        _runner.Checkpoints.Commit(_runner.ProjectPath("restore-me"), "Edited by hand");

        await _runner.AcceptAsync(new RestoreCheckpoint(command.ProjectId, scaffold.CheckpointId));
        events = await _runner.Events.WaitAsync(command.ProjectId, e => e.OfType<CheckpointCreated>().Count() == 2, Timeout, "the restore checkpoint");

        Assert.StartsWith("Restore checkpoint", events.OfType<CheckpointCreated>().Last().Message);
        Assert.Equal(original, File.ReadAllText(app));
        Assert.Equal(3, _runner.Checkpoints.List(_runner.ProjectPath("restore-me")).Count);
    }

    [Fact]
    public async Task Restoring_a_checkpoint_that_does_not_exist_is_refused()
    {
        var command = Build("restore-bad");
        await _runner.AcceptAsync(command);
        await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        var ack = await _runner.SendAsync(new RestoreCheckpoint(command.ProjectId, "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"));

        Assert.False(ack.Accepted);
        Assert.Contains("does not exist", ack.Error);
    }

    [Fact]
    public async Task Deleting_a_project_removes_its_folder_and_state()
    {
        var command = Build("delete-me");
        await _runner.AcceptAsync(command);
        await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        await _runner.AcceptAsync(new DeleteProject(command.ProjectId));
        await _runner.Events.WaitAsync(command.ProjectId, e => e.OfType<ProjectDeleted>().Any(), Timeout, "project-deleted");

        Assert.False(Directory.Exists(_runner.ProjectPath("delete-me")));
        var followUp = await _runner.SendAsync(new FollowUpTurn(command.ProjectId, "more"));
        Assert.False(followUp.Accepted);
    }

    [Fact]
    public async Task Commands_for_unknown_projects_are_refused_with_a_reason()
    {
        var id = Guid.NewGuid();

        var followUp = await _runner.SendAsync(new FollowUpTurn(id, "Add dark mode"));
        var cancel = await _runner.SendAsync(new CancelBuild(id));
        var restore = await _runner.SendAsync(new RestoreCheckpoint(id, "abc1234"));

        Assert.All([followUp, cancel, restore], a => Assert.False(a.Accepted));
        Assert.All([followUp, cancel, restore], a => Assert.False(string.IsNullOrWhiteSpace(a.Error)));
    }

    [Fact]
    public async Task Project_state_survives_a_runner_restart_so_follow_ups_still_work()
    {
        await using var first = RunnerHarness.Create();
        var command = Build("survivor");
        await first.AcceptAsync(command);
        await first.Events.WaitForEndAsync(command.ProjectId, Timeout);

        // A second runner process over the same workspace and home.
        await using var second = RunnerHarness.Create(new Dictionary<string, string?>
        {
            ["Workspace:Root"] = first.WorkspaceRoot,
            ["Workspace:Home"] = first.Home,
        });
        await second.AcceptAsync(new FollowUpTurn(command.ProjectId, "Add a footer"));
        var events = await second.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(2, events.OfType<BuildStarted>().Single().Turn);
    }
}
