using LibGit2Sharp;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit.Abstractions;
using static SentryVibe.Testing.ScriptedItem;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// The real Codex CLI (npm install -g @openai/codex) against the scripted Responses API: real processes, real
/// files, real git, Codex's own workspace-write sandbox.
/// </summary>
public sealed class CodexBuildTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    private ScriptedOpenAiServer _model = null!;
    private RunnerHarness _runner = null!;
    private string _codexHome = null!;

    public async Task InitializeAsync()
    {
        Assert.True(
            Runner.Processes.ExecutableLocator.Find("codex") is not null,
            "The Codex CLI is required: npm install -g @openai/codex");
        PlantedSecrets.Plant();
        // Codex's own files (sessions, its sandbox helper) out of the real ~/.codex. Not under /tmp, wherever the
        // checkout is: Codex refuses to put its sandbox helper in the temp folder, and the sandbox (which leaves /tmp
        // read-only, CodexAgent) hides it from the shell, which then cannot start at all.
        _codexHome = Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sentryvibe-tests", "codex-home",
            Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_codexHome);
        _model = await ScriptedOpenAiServer.StartAsync();
        _runner = RunnerHarness.Create(new Dictionary<string, string?>
        {
            ["Agents:OpenAiBaseUrl"] = _model.ApiBaseUrl,
            ["Agents:OpenAiApiKey"] = "sk-test-codex",
            // A catalogue model with the plain tool set (exec_command, apply_patch, update_plan), not code mode.
            ["Agents:Codex:Model"] = "gpt-5.5",
            ["Agents:Environment:CODEX_HOME"] = _codexHome,
        });
    }

    public async Task DisposeAsync()
    {
        await _runner.DisposeAsync(); // stops every build, so every CLI process
        await _model.DisposeAsync();
        try
        {
            Runner.Build.FileSystem.DeleteDirectory(_codexHome);
        }
        catch (IOException)
        {
        }
    }

    private static StartBuild Build(string slug, string prompt = "Create a React todo app") =>
        new(Guid.NewGuid(), slug, prompt, "vite-react", AgentNames.Codex, StartDevServerWhenReady: false);

    private static ScriptedItem Plan(params (string Step, string Status)[] steps) =>
        FunctionCall("update_plan", new { plan = steps.Select(s => new { step = s.Step, status = s.Status }) });

    private static ScriptedItem Shell(string command) => FunctionCall("exec_command", new { cmd = command });

    private static ScriptedItem AddFile(string path, string content) =>
        CustomCall("apply_patch", $"*** Begin Patch\n*** Add File: {path}\n{string.Concat(content.Split('\n').SkipLast(1).Select(l => "+" + l + "\n"))}*** End Patch\n");

    [Fact]
    public async Task A_scripted_codex_build_writes_files_runs_commands_tracks_the_plan_and_counts_tokens()
    {
        var command = Build("codex-todo");
        var project = _runner.ProjectPath("codex-todo");
        const string page = "export const Todos = () => <h1>Todos</h1>\n";
        _model
            .Enqueue(Plan(("Write the page", "in_progress"), ("List the sources", "pending")))
            .Enqueue(AddFile("src/Todos.tsx", page))
            .Enqueue(Shell("ls src > files.txt"))
            .Enqueue(Plan(("Write the page", "completed"), ("List the sources", "completed")))
            .EnqueueMessage("Your todo app is ready.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);
        output.WriteLine(EventCollector.Describe(events));

        var completed = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(5, _model.Requests.Count);
        Assert.All(_model.Requests, r => Assert.Equal("Bearer sk-test-codex", r.Authorization));
        // Input tokens count the cached part once (the API's input_tokens includes it).
        Assert.Equal(5 * 120, completed.InputTokens);
        Assert.Equal(5 * 40, completed.OutputTokens);
        Assert.NotNull(completed.SessionId);
        Assert.All(_model.Requests, r => Assert.Equal(completed.SessionId, r.SessionId));

        // Files on disk, written by the real CLI through its sandbox.
        Assert.Equal(page, File.ReadAllText(Path.Join(project, "src", "Todos.tsx")));
        Assert.Contains("Todos.tsx", File.ReadAllText(Path.Join(project, "files.txt")));

        var edit = events.OfType<ToolUse>().Where(t => t.Name == "Edit").ToList();
        Assert.Equal([ToolStatuses.Running, ToolStatuses.Succeeded], edit.Select(t => t.Status));
        Assert.Equal("add src/Todos.tsx", edit[1].InputSummary);
        var bash = events.OfType<ToolUse>().Where(t => t.Name == "Bash").ToList();
        Assert.Equal([ToolStatuses.Running, ToolStatuses.Succeeded], bash.Select(t => t.Status));
        Assert.Equal("ls src > files.txt", bash[1].InputSummary);

        var plans = events.OfType<TodosUpdated>().ToList();
        Assert.Equal(2, plans.Count);
        Assert.Equal(["Write the page", "List the sources"], plans[0].Todos.Select(t => t.Content));
        Assert.All(plans[0].Todos, t => Assert.NotEqual(TodoStatuses.Completed, t.Status));
        Assert.All(plans[1].Todos, t => Assert.Equal(TodoStatuses.Completed, t.Status));
        Assert.True(events.IndexOf(plans[0]) < events.IndexOf(edit[1]));
        Assert.Contains(events.OfType<AgentMessage>(), m => m.Text == "Your todo app is ready.");
        Assert.DoesNotContain(events.OfType<BuildLog>(), l => l.Level == "error");

        var checkpoint = events.OfType<CheckpointCreated>().Single(c => c.Turn == 1);
        using var repo = new Repository(project);
        Assert.Equal(page, ((Blob)repo.Lookup<Commit>(checkpoint.CheckpointId)["src/Todos.tsx"].Target).GetContentText());
    }

    [Fact]
    public async Task A_follow_up_turn_resumes_the_same_codex_thread_and_counts_only_its_own_tokens()
    {
        var command = Build("codex-follow", "Create a counter app");
        var project = _runner.ProjectPath("codex-follow");
        _model.Enqueue(AddFile("first.txt", "first\n")).EnqueueMessage("Built it.");
        await _runner.AcceptAsync(command);
        var first = Assert.IsType<BuildCompleted>((await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout))[^1]);
        var requestsBefore = _model.Requests.Count;

        _model.Enqueue(AddFile("second.txt", "second\n")).EnqueueMessage("Added it.");
        await _runner.AcceptAsync(new FollowUpTurn(command.ProjectId, "Add a reset button"));
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout, count: 2);

        var second = Assert.IsType<BuildCompleted>(events[^1]);
        Assert.Equal(first.SessionId, second.SessionId);
        Assert.Equal(2, events.OfType<BuildStarted>().Last().Turn);
        Assert.Equal("second\n", File.ReadAllText(Path.Join(project, "second.txt")));
        // The resumed thread carries the first turn: the model sees the earlier prompt, call and answer again.
        var followUp = _model.Requests.Skip(requestsBefore).ToList();
        Assert.Equal(2, followUp.Count);
        Assert.All(followUp, r => Assert.Equal(first.SessionId, r.SessionId));
        Assert.Contains("Create a counter app", followUp[0].AllText);
        Assert.Contains("Built it.", followUp[0].AllText);
        Assert.Contains("Add a reset button", followUp[0].AllText);
        // Codex reports the thread's running total; the turn counts only its own two requests.
        Assert.Equal(2 * 120, second.InputTokens);
        Assert.Equal(2 * 40, second.OutputTokens);
        Assert.Contains(_runner.Checkpoints.List(project), c => c.Message.StartsWith("Turn 2: Add a reset button"));
    }

    [Fact]
    public async Task Codex_shell_cannot_write_outside_its_project_and_sees_none_of_the_runners_secrets()
    {
        var command = Build("codex-jail");
        var project = _runner.ProjectPath("codex-jail");
        // Outside the project but inside the temp folder, which Codex's workspace-write would allow by default.
        var outside = Path.Join(_runner.Sandbox, "outside.txt");
        _model
            .Enqueue(Shell($"touch '{outside}'; echo outside-exit=$?"))
            .Enqueue(Shell("touch inside.txt; echo inside-exit=$?; env | sort > env.txt"))
            .EnqueueMessage("Tried both.");

        await _runner.AcceptAsync(command);
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCompleted>(events[^1]);
        var results = string.Join("\n", _model.Requests.SelectMany(r => r.ToolOutputs.Values).Distinct());
        output.WriteLine(results);
        Assert.False(File.Exists(outside), "the agent's shell wrote outside its project folder");
        Assert.Contains("Read-only file system", results);
        Assert.True(File.Exists(Path.Join(project, "inside.txt")), "a write inside the project must still work");
        var env = File.ReadAllText(Path.Join(project, "env.txt"));
        Assert.Equal([], PlantedSecrets.FoundIn(env).Where(name => name != "OPENAI_API_KEY"));
        Assert.DoesNotContain("sk-planted-openai", env);
        Assert.DoesNotContain("sk-test-codex", env);
        Assert.DoesNotContain(events.OfType<BuildLog>(), l => l.Message.StartsWith("agent not sandboxed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancelling_a_codex_build_stops_the_cli_and_its_process_tree()
    {
        var hold = new TaskCompletionSource();
        _model.Enqueue(new ScriptedResponse([Message("Thinking…")]) { Gate = hold.Task });
        var command = Build("codex-held");
        var project = _runner.ProjectPath("codex-held");

        await _runner.AcceptAsync(command);
        await Eventually.WaitAsync(() => _model.Requests.Count == 1, Timeout, "codex's first model request");
        output.WriteLine(string.Join("\n", ProcessProbe.RunningIn(project)));
        Assert.NotEmpty(ProcessProbe.RunningIn(project));
        await _runner.AcceptAsync(new CancelBuild(command.ProjectId));
        var events = await _runner.Events.WaitForEndAsync(command.ProjectId, Timeout);

        Assert.IsType<BuildCancelled>(events[^1]);
        await Eventually.WaitAsync(() => ProcessProbe.RunningIn(project).Count == 0, TimeSpan.FromSeconds(10), "the codex processes to be gone");
        hold.TrySetResult();
    }
}
