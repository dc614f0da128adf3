using System.Diagnostics;
using LibGit2Sharp;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit.Abstractions;
using static SentryVibe.Testing.ScriptedBlock;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// The real Claude Code CLI (npm install -g @anthropic-ai/claude-code) against the scripted Messages API:
/// real processes, real files, real git.
/// </summary>
public sealed class ClaudeCodeBuildTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private ScriptedAnthropicServer _model = null!;
    private RunnerHarness _runner = null!;

    public async Task InitializeAsync()
    {
        Assert.True(
            Runner.Processes.ExecutableLocator.Find("claude") is not null,
            "The Claude Code CLI is required: npm install -g @anthropic-ai/claude-code");
        _model = await ScriptedAnthropicServer.StartAsync();
        _runner = CreateRunner();
    }

    private RunnerHarness CreateRunner(int maxConcurrent = 2, bool verifyBuild = false) => RunnerHarness.Create(new Dictionary<string, string?>
    {
        ["Agents:AnthropicBaseUrl"] = _model.BaseUrl,
        ["Agents:AnthropicApiKey"] = "sk-test",
        ["Build:MaxConcurrentBuilds"] = maxConcurrent.ToString(),
        ["Build:VerifyBuild"] = verifyBuild.ToString(),
    });

    public async Task DisposeAsync()
    {
        await _runner.DisposeAsync(); // stops every build, so every CLI process
        await _model.DisposeAsync();
    }

    private static StartBuild Build(string slug, string prompt = "Create a React todo app") =>
        new(Guid.NewGuid(), slug, prompt, "vite-react", AgentNames.ClaudeCode, StartDevServerWhenReady: false);

    [Fact]
    public async Task A_scripted_build_writes_files_runs_commands_tracks_todos_and_completes_with_cost()
    {
        var command = Build("claude-todo");
        var project = _runner.ProjectPath("claude-todo");
        const string app = "export default function App() {\n  return <h1>Todos</h1>\n}\n";
        _model
            .Enqueue(
                Text("I'll plan the work first."),
                ToolUse("TaskCreate", new { subject = "Write the todo app", description = "Replace App.tsx", activeForm = "Writing the todo app" }),
                ToolUse("TaskCreate", new { subject = "Check the files", description = "List the sources" }))
            .Enqueue(
                ToolUse("TaskUpdate", new { taskId = "1", status = "in_progress" }),
                ToolUse("Read", new { file_path = Path.Join(project, "src", "App.tsx") }))
            // Claude Code only overwrites a file it has read.
            .Enqueue(ToolUse("Write", new { file_path = Path.Join(project, "src", "App.tsx"), content = app }))
            .Enqueue(
                ToolUse("TaskUpdate", new { taskId = "1", status = "completed" }),
                ToolUse("Bash", new { command = "ls src > files.txt", description = "List the sources" }))
            .Enqueue(ToolUse("TaskUpdate", new { taskId = "2", status = "completed" }))
            .EnqueueText("Your todo app is ready.");
        var clock = Stopwatch.StartNew();

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        clock.Stop();
        output.WriteLine($"Scripted build: {events.Count} events in {clock.ElapsedMilliseconds} ms");
        foreach (var group in events.GroupBy(e => e.GetType().Name))
        {
            output.WriteLine($"  {group.Key}: {group.Count()}");
        }

        var completed = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.True(completed.CostUsd > 0, "cost comes from the CLI's result line");
        Assert.True(completed.InputTokens > 0 && completed.OutputTokens > 0);
        Assert.Equal(1, completed.Turns);
        Assert.NotNull(completed.SessionId);

        // Files on disk, written by the real CLI.
        Assert.Equal(app, File.ReadAllText(Path.Join(project, "src", "App.tsx")));
        Assert.Contains("App.tsx", File.ReadAllText(Path.Join(project, "files.txt")));

        // Events in order.
        var firstTodos = events.OfType<TodosUpdated>().First();
        var write = events.OfType<ToolUse>().Single(t => t.Name == "Write" && t.Status == ToolStatuses.Succeeded);
        var turnCheckpoint = events.OfType<CheckpointCreated>().Single(c => c.Turn == 1);
        Assert.True(events.IndexOf(events.OfType<ProjectMetadata>().First()) < events.IndexOf(firstTodos));
        Assert.True(events.IndexOf(firstTodos) < events.IndexOf(write));
        Assert.True(events.IndexOf(write) < events.IndexOf(turnCheckpoint));
        Assert.True(events.IndexOf(turnCheckpoint) < events.IndexOf(completed));
        Assert.Equal("src/App.tsx", write.InputSummary);
        Assert.Contains(events.OfType<ToolUse>(), t => t.Name == "Bash" && t.Status == ToolStatuses.Succeeded);
        Assert.Contains(events.OfType<AgentMessage>(), m => m.Text == "Your todo app is ready.");
        var finalTodos = events.OfType<TodosUpdated>().Last().Todos;
        Assert.Equal(["Write the todo app", "Check the files"], finalTodos.Select(t => t.Content));
        Assert.All(finalTodos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
        Assert.DoesNotContain(events.OfType<BuildStarted>(), s => s.Reason is not null);
        Assert.Equal(completed.SessionId, events.OfType<ProjectMetadata>().Last().SessionId);

        // The turn is a commit holding the agent's work.
        using var repo = new Repository(project);
        var commit = repo.Lookup<Commit>(turnCheckpoint.CheckpointId);
        Assert.StartsWith("Turn 1: Create a React todo app", commit.MessageShort);
        Assert.Equal(app, ((Blob)commit["src/App.tsx"].Target).GetContentText());
        Assert.Equal(2, repo.Commits.Count());
    }

    [Fact]
    public async Task A_follow_up_turn_resumes_the_same_claude_session()
    {
        var command = Build("claude-follow", "Create a counter app");
        var project = _runner.ProjectPath("claude-follow");
        _model.Enqueue(ToolUse("Write", new { file_path = Path.Join(project, "first.txt"), content = "first" })).EnqueueText("Built it.");
        await _runner.AcceptAsync(command);
        var first = Assert.IsType<BuildCompleted>((await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout))[^1]);
        var requestsBefore = _model.Requests.Count;

        _model.Enqueue(ToolUse("Write", new { file_path = Path.Join(project, "second.txt"), content = "second" })).EnqueueText("Added it.");
        await _runner.AcceptAsync(new FollowUpTurn(command.ProjectId, "Add a reset button"));
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout, count: 2);

        var second = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(first.SessionId, second.SessionId);
        Assert.Equal(2, events.OfType<BuildStarted>().Last().Turn);
        Assert.True(File.Exists(Path.Join(project, "second.txt")));
        // The resumed conversation carries the first turn: the model sees the earlier prompt again.
        var followUpRequest = _model.Requests.Skip(requestsBefore).First();
        Assert.Contains("Create a counter app", followUpRequest.AllText);
        Assert.Contains("Add a reset button", followUpRequest.AllText);
        Assert.Contains(_runner.Checkpoints.List(project), c => c.Message.StartsWith("Turn 2: Add a reset button"));
    }

    [Fact]
    public async Task A_turn_that_ends_with_open_todos_is_resumed_automatically()
    {
        var command = Build("claude-resume");
        _model
            .Enqueue(ToolUse("TaskCreate", new { subject = "Build the list", description = "the list" }))
            .EnqueueText("I'll stop here for now.")
            // The automatic resume turn:
            .Enqueue(ToolUse("TaskUpdate", new { taskId = "1", status = "completed" }))
            .EnqueueText("Finished the list.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        var completed = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(2, completed.Turns);
        var resume = events.OfType<BuildStarted>().Single(s => s.Turn == 2);
        Assert.Contains("open", resume.Reason);
        Assert.Contains("Build the list", resume.Prompt);
        Assert.All(events.OfType<TodosUpdated>().Last().Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
    }

    [Fact]
    public async Task Builds_beyond_the_limit_are_queued_and_cancel_stops_the_agent_process()
    {
        await using var runner = CreateRunner(maxConcurrent: 1);
        var hold = new TaskCompletionSource();
        _model.Enqueue(new ScriptedReply([Text("Thinking…")]) { Gate = hold.Task }).EnqueueText("Second build done.");
        var first = Build("claude-held");
        var second = Build("claude-waiting");

        await runner.AcceptAsync(first);
        await Eventually.WaitAsync(() => _model.Requests.Count == 1, Timeout, "the first build's model request");
        await runner.AcceptAsync(second);
        var queued = await runner.Events.WaitAsync(second.ProjectId, e => e.OfType<BuildQueued>().Any(), Timeout, "build-queued");
        Assert.Equal(1, queued.OfType<BuildQueued>().Single().Position);
        Assert.NotEmpty(ProcessProbe.RunningIn(runner.ProjectPath("claude-held")));

        await runner.AcceptAsync(new CancelBuild(first.ProjectId));
        var cancelled = await runner.Events.WaitForEndAsync(first.ProjectId, Timeout);

        Assert.IsType<BuildCancelled>(cancelled[^1]);
        await Eventually.WaitAsync(() => ProcessProbe.RunningIn(runner.ProjectPath("claude-held")).Count == 0, TimeSpan.FromSeconds(10), "the CLI process to be gone");
        var secondEvents = await runner.Events.WaitForEndAsync(second.ProjectId, Timeout);
        Assert.IsType<BuildCompleted>(secondEvents[^1]);
        hold.TrySetResult();
    }

    [Fact]
    public async Task A_failing_build_check_after_a_turn_gets_one_fix_turn_with_the_error_text()
    {
        await using var runner = CreateRunner(verifyBuild: true);
        // A template from a local git repository whose `npm run build` fails while app.txt says BROKEN.
        var template = Directory.CreateTempSubdirectory("sentryvibe-template-").FullName;
        try
        {
            File.WriteAllText(Path.Join(template, "package.json"),
                """{ "name": "checked", "private": true, "scripts": { "build": "node check.js", "dev": "node check.js" } }""");
            File.WriteAllText(Path.Join(template, "check.js"), """
                const text = require('fs').readFileSync('app.txt', 'utf8');
                if (text.includes('BROKEN')) { console.error('check.js: app.txt line 1: BROKEN is not allowed'); process.exit(2); }
                console.log('build ok');
                """);
            File.WriteAllText(Path.Join(template, "app.txt"), "fine\n");
            using (var repo = new Repository(Repository.Init(template)))
            {
                Commands.Stage(repo, "*");
                var who = new Signature("t", "t@example.com", DateTimeOffset.UtcNow);
                repo.Commit("template", who, who);
            }

            var command = new StartBuild(Guid.NewGuid(), "claude-fix", "Make the app", "", AgentNames.ClaudeCode,
                TemplateUrl: template, StartDevServerWhenReady: false);
            var project = runner.ProjectPath("claude-fix");
            _model
                // Turn 1 breaks the build (and installs nothing: an empty node_modules is enough for the check to run).
                .Enqueue(ToolUse("Bash", new { command = "mkdir -p node_modules && echo BROKEN > app.txt", description = "Edit the app" }))
                .EnqueueText("Done.")
                // The fix turn:
                .Enqueue(ToolUse("Bash", new { command = "echo repaired > app.txt", description = "Fix the app" }))
                .EnqueueText("Fixed the build.");

            await runner.AcceptAsync(command);
            var events = await runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

            var completed = Assert.IsType<BuildCompleted>(events[^1]);
            Assert.Equal(2, completed.Turns);
            var fix = events.OfType<BuildStarted>().Single(s => s.Turn == 2);
            Assert.Equal("the build check failed", fix.Reason);
            Assert.Contains("BROKEN is not allowed", fix.Prompt);
            Assert.Contains(_model.Requests, r => r.AllText.Contains("BROKEN is not allowed", StringComparison.Ordinal));
            var logs = events.OfType<BuildLog>().Select(l => l.Message).ToList();
            Assert.Contains(logs, l => l.StartsWith("The build check failed (exit code", StringComparison.Ordinal));
            Assert.True(logs.FindLastIndex(l => l == "The build check passed.") > logs.FindIndex(l => l.StartsWith("The build check failed", StringComparison.Ordinal)));
            Assert.Equal("repaired\n", File.ReadAllText(Path.Join(project, "app.txt")));
            Assert.DoesNotContain(events.OfType<BuildStarted>(), s => s.Turn > 2);
        }
        finally
        {
            Runner.Build.FileSystem.DeleteDirectory(template);
        }
    }
}
