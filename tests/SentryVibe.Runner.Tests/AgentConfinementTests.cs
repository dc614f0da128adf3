using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;
using SentryVibe.Testing;
using Xunit.Abstractions;
using static SentryVibe.Testing.ScriptedBlock;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// The agents play the attacker: the real Claude Code CLI and the anthropic agent, driven by the scripted model,
/// try to write outside their project and read the runner's secrets from their environment (docs/security.md).
/// </summary>
public sealed class AgentConfinementTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private ScriptedAnthropicServer _model = null!;
    private RunnerHarness _runner = null!;

    public async Task InitializeAsync()
    {
        PlantedSecrets.Plant();
        _model = await ScriptedAnthropicServer.StartAsync();
        _runner = CreateRunner();
    }

    private RunnerHarness CreateRunner(Action<IServiceCollection>? services = null) => RunnerHarness.Create(new Dictionary<string, string?>
    {
        ["Agents:AnthropicBaseUrl"] = _model.BaseUrl,
        ["Agents:AnthropicApiKey"] = "sk-test",
    }, services);

    public async Task DisposeAsync()
    {
        await _runner.DisposeAsync();
        await _model.DisposeAsync();
    }

    private static StartBuild Build(string slug, string agent) =>
        new(Guid.NewGuid(), slug, "Create a React todo app", "vite-react", agent, StartDevServerWhenReady: false);

    private string Outside => Path.Join(_runner.Sandbox, "outside.txt");

    [Fact]
    public async Task Claude_code_shell_cannot_write_outside_its_project_but_writes_inside()
    {
        RequireClaude();
        var command = Build("claude-jail", AgentNames.ClaudeCode);
        _model
            .Enqueue(ToolUse("Bash", new { command = $"touch '{Outside}'; echo outside-exit=$?", description = "Write outside" }))
            .Enqueue(ToolUse("Bash", new { command = "touch inside.txt; echo inside-exit=$?", description = "Write inside" }))
            .EnqueueText("Tried both.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCompleted>(events[^1]);
        var results = string.Join("\n", _model.Requests.SelectMany(r => r.ToolResults).Select(t => t.Content).Distinct());
        output.WriteLine(results);
        Assert.False(File.Exists(Outside), "the agent's shell wrote outside its project folder");
        Assert.Contains("Read-only file system", results);
        Assert.True(File.Exists(Path.Join(_runner.ProjectPath("claude-jail"), "inside.txt")), "a write inside the project must still work");
        Assert.DoesNotContain(events.OfType<BuildLog>(), l => l.Message.StartsWith("agent not sandboxed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Claude_code_and_its_shell_see_none_of_the_runners_secrets()
    {
        RequireClaude();
        var command = Build("claude-env", AgentNames.ClaudeCode);
        _model
            .Enqueue(ToolUse("Bash", new { command = "env | sort > env.txt", description = "List the environment" }))
            .EnqueueText("Listed.");

        await _runner.AcceptAsync(command);
        Assert.IsType<BuildCompleted>((await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout))[^1]);

        var env = File.ReadAllText(Path.Join(_runner.ProjectPath("claude-env"), "env.txt"));
        output.WriteLine(env);
        Assert.Empty(PlantedSecrets.FoundIn(env));
        Assert.Contains("\nPATH=", "\n" + env);
        Assert.Contains("\nHOME=", "\n" + env);
        // The CLI has its endpoint; its key stays out of the shell's reach.
        Assert.Contains($"ANTHROPIC_BASE_URL={_model.BaseUrl}", env);
        Assert.DoesNotContain("sk-test", env);
    }

    [Fact]
    public async Task Anthropic_agent_shell_is_confined_to_its_project_and_sees_none_of_the_runners_secrets()
    {
        var command = Build("api-jail", AgentNames.Anthropic);
        _model
            .Enqueue(ToolUse("run_command", new { command = $"touch '{Outside}'" }))
            .Enqueue(ToolUse("run_command", new { command = "touch inside.txt && env | sort > env.txt" }))
            .EnqueueText("Tried both.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCompleted>(events[^1]);
        var project = _runner.ProjectPath("api-jail");
        Assert.False(File.Exists(Outside), "the agent's shell wrote outside its project folder");
        var touchOutside = events.OfType<ToolUse>().First(t => t.Name == "run_command" && t.Status != ToolStatuses.Running);
        Assert.Equal(ToolStatuses.Failed, touchOutside.Status);
        Assert.Contains("Read-only file system", touchOutside.ResultSummary);
        Assert.True(File.Exists(Path.Join(project, "inside.txt")), "a write inside the project must still work");
        var env = File.ReadAllText(Path.Join(project, "env.txt"));
        output.WriteLine(env);
        Assert.Empty(PlantedSecrets.FoundIn(env));
        Assert.DoesNotContain("sk-test", env);
        Assert.Contains("\nPATH=", "\n" + env);
    }

    [Fact]
    public async Task The_build_check_sees_none_of_the_runners_secrets()
    {
        await _runner.DisposeAsync();
        _runner = RunnerHarness.Create(new Dictionary<string, string?>
        {
            ["Agents:AnthropicBaseUrl"] = _model.BaseUrl,
            ["Agents:AnthropicApiKey"] = "sk-test",
            ["Build:VerifyBuild"] = "true",
        });
        var command = Build("check-env", AgentNames.Anthropic);
        // The template's build check is `npm run build`: the agent makes it print the environment it runs in.
        _model
            .Enqueue(
                ToolUse("write_file", new { path = "package.json", content = """{ "name": "check-env", "private": true, "scripts": { "build": "env | sort > check-env.txt" } }""" }),
                ToolUse("write_file", new { path = "node_modules/.installed", content = "" }))
            .EnqueueText("Ready for the check.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.Contains(events.OfType<BuildLog>(), l => l.Message == "The build check passed.");
        var env = File.ReadAllText(Path.Join(_runner.ProjectPath("check-env"), "check-env.txt"));
        Assert.Empty(PlantedSecrets.FoundIn(env));
        Assert.DoesNotContain("sk-test", env);
        Assert.Contains("\nCI=1", "\n" + env);
        Assert.Contains("\nPATH=", "\n" + env);
    }

    [Fact]
    public async Task A_build_says_plainly_when_the_agent_cannot_be_sandboxed()
    {
        RequireClaude();
        await _runner.DisposeAsync();
        // A machine without bubblewrap and socat: a real condition, made with a PATH that has neither.
        var bare = Directory.CreateTempSubdirectory("sv-bare-path-").FullName;
        _runner = CreateRunner(s => s.AddSingleton(new AgentSandbox(bare)));
        var command = Build("claude-bare", AgentNames.ClaudeCode);
        _model.EnqueueText("Nothing to do.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        Directory.Delete(bare);

        var notice = Assert.Single(events.OfType<BuildLog>(), l => l.Message.StartsWith("agent not sandboxed: ", StringComparison.Ordinal));
        output.WriteLine(notice.Message);
        Assert.Contains("bubblewrap is not installed", notice.Message);
        Assert.Equal("warn", notice.Level);
    }

    [Fact]
    public void The_probe_reports_not_sandboxed_without_bubblewrap_or_without_socat()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // bubblewrap is Linux only
        }
        var bare = Directory.CreateTempSubdirectory("sv-bare-path-").FullName;
        var onlyBwrap = Directory.CreateTempSubdirectory("sv-bwrap-path-").FullName;
        try
        {
            File.CreateSymbolicLink(Path.Join(onlyBwrap, "bwrap"), Runner.Processes.ExecutableLocator.Find("bwrap")
                ?? throw new InvalidOperationException("bubblewrap is required here: sudo apt-get install bubblewrap socat"));

            var none = AgentSandbox.Probe(bare);
            var noSocat = AgentSandbox.Probe(onlyBwrap);
            var here = AgentSandbox.Probe();
            output.WriteLine($"PATH without either: {none.Summary}\nPATH without socat: {noSocat.Summary}\nThis machine: {here.Summary}");

            Assert.StartsWith("agent not sandboxed: bubblewrap is not installed", none.Summary);
            Assert.NotNull(none.Bubblewrap);
            Assert.Null(noSocat.Bubblewrap); // bubblewrap alone confines the anthropic agent's shell
            Assert.StartsWith("agent not sandboxed: socat is not installed", noSocat.Summary);
            Assert.Equal("agent sandbox: on (bubblewrap)", here.Summary);
        }
        finally
        {
            Directory.Delete(bare, true);
            Directory.Delete(onlyBwrap, true);
        }
    }

    private static void RequireClaude() => Assert.True(
        Runner.Processes.ExecutableLocator.Find("claude") is not null,
        "The Claude Code CLI is required: npm install -g @anthropic-ai/claude-code");
}
