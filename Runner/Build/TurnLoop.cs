using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;
using SentryVibe.Runner.Checkpoints;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

/// <summary>A build the engine has checked and the scheduler is about to run.</summary>
/// <param name="Template">The built-in template to scaffold; null for a git template (or when continuing).</param>
/// <param name="Resume">The project already has checkpoints here: continue it instead of scaffolding.</param>
public sealed record PlannedBuild(StartBuild Command, ProjectState State, TemplateManifest? Template, AgentChoice Choice, bool Resume);

/// <summary>
/// What a build or a follow-up does once it holds a slot: scaffold (builds only), agent turns with a checkpoint after
/// each, up to <see cref="BuildOptions.MaxAutoResumes"/> more turns while todos stay open, the template's build check
/// with one fix turn, and the closing events. The project's state is passed along and saved as it changes, never read
/// back. Everything it has to say goes out as events; it never throws for a failed build.
/// </summary>
public sealed class TurnLoop(
    IEventSink events,
    ProjectStateStore states,
    TemplateScaffolder scaffolder,
    CheckpointStore checkpoints,
    IOptions<BuildOptions> options,
    ILogger<TurnLoop> logger,
    IDevServerControl? devServers = null,
    ChildEnvironment? environment = null)
{
    /// <summary>Lines of a failing build check handed to the fix turn (the errors are at the end).</summary>
    private const int CheckOutputLines = 60;

    private readonly ChildEnvironment _environment = environment ?? ChildEnvironment.Default;
    private BuildOptions Options => options.Value;

    public async Task BuildAsync(PlannedBuild build, CancellationToken shuttingDown, CancellationToken ct)
    {
        var (command, state, template, choice, resume) = build;
        var id = command.ProjectId;
        var run = new RunTotals();
        await PublishAsync(id, new BuildStarted(command.Prompt, state.TemplateId, choice.Agent.Name, state.Turns + 1));
        if (choice.Notice is not null)
        {
            await PublishAsync(id, new BuildLog(choice.Notice, "warn"));
        }
        try
        {
            TemplateManifest manifest;
            if (resume)
            {
                manifest = ManifestFor(state);
                await PublishAsync(id, new BuildLog($"Continuing the existing project in {state.Path}."));
            }
            else
            {
                manifest = await scaffolder.ScaffoldAsync(state.Path, template, command.TemplateUrl, m => PublishAsync(id, new BuildLog(m)), ct);
                var scaffold = checkpoints.Commit(state.Path, $"Scaffold {manifest.Id}", allowEmpty: true)!;
                state = Save(state with { TemplateId = manifest.Id });
                await PublishAsync(id, new CheckpointCreated(scaffold.Id, scaffold.Message, scaffold.CreatedAt, 0));
            }
            await PublishAsync(id, ProjectInspector.Metadata(state.Path, manifest, state.SessionId));

            (var ok, state) = await RunTurnsAsync(state, choice.Agent, manifest, command.Prompt, announceFirst: false, run, ct);
            if (ok && choice.Agent.Name != Protocol.Agents.None)
            {
                (ok, state) = await VerifyAsync(state, choice.Agent, manifest, run, ct);
            }
            if (ok)
            {
                await CompleteAsync(state, manifest, run);
                if (command.StartDevServerWhenReady)
                {
                    await StartDevServerAsync(id, command.PreviewId, shuttingDown);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CancelledAsync(id, shuttingDown);
        }
        catch (Exception e) when (e is TemplateException or WorkspaceException)
        {
            await PublishAsync(id, new BuildFailed(e.Message));
        }
        catch (Exception e)
        {
            logger.LogError(e, "Build of {ProjectId} failed", id);
            await PublishAsync(id, new BuildFailed($"The build failed: {e.Message}"));
        }
    }

    public async Task FollowUpAsync(FollowUpTurn command, ProjectState state, AgentChoice choice, CancellationToken shuttingDown, CancellationToken ct)
    {
        var id = command.ProjectId;
        var run = new RunTotals();
        try
        {
            var manifest = ManifestFor(state);
            (var ok, state) = await RunTurnsAsync(state, choice.Agent, manifest, command.Prompt, announceFirst: true, run, ct);
            if (ok)
            {
                await CompleteAsync(state, manifest, run);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CancelledAsync(id, shuttingDown);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Follow-up of {ProjectId} failed", id);
            await PublishAsync(id, new BuildFailed($"The turn failed: {e.Message}"));
        }
    }

    /// <summary>The manifest of an existing project: its built-in template's, else what its folder says.</summary>
    public static TemplateManifest ManifestFor(ProjectState state) =>
        state.TemplateUrl is null && TemplateCatalog.Find(state.TemplateId) is { } builtIn
            ? builtIn
            : ProjectInspector.InferManifest(state.Path, state.TemplateId);

    /// <summary>
    /// One agent turn, a checkpoint, and up to <see cref="BuildOptions.MaxAutoResumes"/> more turns while todos stay open.
    /// False when a turn failed (BuildFailed is already published).
    /// </summary>
    private async Task<(bool Ok, ProjectState State)> RunTurnsAsync(ProjectState state, IAgent agent, TemplateManifest manifest, string prompt, bool announceFirst, RunTotals run, CancellationToken ct)
    {
        var id = state.ProjectId;
        var turnPrompt = prompt;
        string? reason = null;
        var announce = announceFirst;
        for (var resumes = 0; ; resumes++)
        {
            (var result, state) = await TurnAsync(state, agent, manifest, turnPrompt, reason, announce, run, ct);
            if (!result.Success)
            {
                await PublishAsync(id, new BuildFailed(result.Error ?? "The agent failed."));
                return (false, state);
            }
            var open = result.OpenTodos;
            if (open.Count == 0 || agent.Name == Protocol.Agents.None)
            {
                return (true, state);
            }
            if (resumes >= Options.MaxAutoResumes)
            {
                await PublishAsync(id, new BuildLog($"{open.Count} todo(s) are still open after {resumes} automatic resumes; stopping here.", "warn"));
                return (true, state);
            }
            reason = $"{open.Count} todo(s) still open";
            turnPrompt = "You stopped before finishing. These todos are still open:\n"
                + string.Join("\n", open.Select(t => $"- {t.Content} ({t.Status})"))
                + "\nContinue and complete them, marking each one completed when it is done.";
            announce = true;
        }
    }

    private async Task<(AgentTurnResult Result, ProjectState State)> TurnAsync(ProjectState state, IAgent agent, TemplateManifest manifest, string prompt, string? reason, bool announce, RunTotals run, CancellationToken ct)
    {
        var id = state.ProjectId;
        var turn = state.Turns + 1;
        if (announce)
        {
            await PublishAsync(id, new BuildStarted(prompt, manifest.Id, agent.Name, turn, reason));
        }
        if (agent.NotSandboxed() is { } notSandboxed)
        {
            await PublishAsync(id, new BuildLog(SandboxStatus.NotSandboxed(notSandboxed), "warn"));
        }
        var context = new AgentTurnContext(id, state.Path, manifest, events, AgentInstructions.For(manifest, state.Path, PackageJson.RunCommand(state.Path)));
        AgentTurnResult result;
        try
        {
            result = await agent.RunTurnAsync(context, prompt, state.SessionId, ct);
        }
        finally
        {
            // Whatever the agent wrote is kept as a checkpoint, even when the turn was cancelled or failed.
            state = Save(state with { Turns = turn });
            var label = ct.IsCancellationRequested ? "Cancelled turn" : "Turn";
            await CheckpointAsync(id, state.Path, $"{label} {turn}: {prompt}", turn);
        }
        if (result.SessionId is { } session)
        {
            state = Save(state with { SessionId = session });
        }
        run.Add(result);
        return (result, state);
    }

    /// <summary>Runs the template's build command when dependencies are installed; one fix turn on failure.</summary>
    private async Task<(bool Ok, ProjectState State)> VerifyAsync(ProjectState state, IAgent agent, TemplateManifest manifest, RunTotals run, CancellationToken ct)
    {
        var id = state.ProjectId;
        if (!Options.VerifyBuild || string.IsNullOrWhiteSpace(manifest.BuildCommand) || !Directory.Exists(Path.Join(state.Path, "node_modules")))
        {
            return (true, state);
        }
        var (passed, output) = await RunCheckAsync(id, state.Path, manifest.BuildCommand, ct);
        if (passed)
        {
            return (true, state);
        }
        var prompt = $"`{manifest.BuildCommand}` fails with:\n```\n{output}\n```\nFix the errors so the build passes.";
        (var result, state) = await TurnAsync(state, agent, manifest, prompt, "the build check failed", announce: true, run, ct);
        if (!result.Success)
        {
            await PublishAsync(id, new BuildFailed(result.Error ?? "The fix turn failed."));
            return (false, state);
        }
        var (passedAfterFix, _) = await RunCheckAsync(id, state.Path, manifest.BuildCommand, ct);
        if (!passedAfterFix)
        {
            await PublishAsync(id, new BuildLog($"`{manifest.BuildCommand}` still fails after one fix turn; the dev server may still work.", "warn"));
        }
        return (true, state);
    }

    private async Task<(bool Passed, string Output)> RunCheckAsync(Guid id, string path, string commandLine, CancellationToken ct)
    {
        await PublishAsync(id, new BuildLog($"Checking the build: {commandLine}"));
        var outcome = await ShellCommand.RunAsync(commandLine, path, _environment.For(set: [new("CI", "1")]), Options.VerifyTimeout,
            CappedOutput.LastLines(CheckOutputLines), ct);
        ct.ThrowIfCancellationRequested();
        var passed = outcome.ExitCode == 0;
        await PublishAsync(id, passed
            ? new BuildLog("The build check passed.")
            : new BuildLog(outcome.TimedOut ? $"The build check timed out after {Options.VerifyTimeout}." : $"The build check failed (exit code {outcome.ExitCode}).", "error"));
        return (passed, outcome.Output);
    }

    private async Task CompleteAsync(ProjectState state, TemplateManifest manifest, RunTotals run)
    {
        await PublishAsync(state.ProjectId, ProjectInspector.Metadata(state.Path, manifest, state.SessionId));
        await PublishAsync(state.ProjectId, new BuildCompleted(run.Turns, run.Elapsed, run.Cost, run.Input, run.Output, state.SessionId));
    }

    private async Task StartDevServerAsync(Guid id, string? previewId, CancellationToken shuttingDown)
    {
        if (devServers is null)
        {
            await PublishAsync(id, new BuildLog("This runner has no dev-server support; start the app yourself.", "warn"));
            return;
        }
        try
        {
            await devServers.StartAsync(id, previewId, shuttingDown);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Starting the dev server of {ProjectId} failed", id);
            await PublishAsync(id, new BuildLog($"The dev server did not start: {e.Message}", "error"));
        }
    }

    private async Task CheckpointAsync(Guid id, string path, string message, int turn)
    {
        try
        {
            if (Directory.Exists(path) && checkpoints.Commit(path, message) is { } checkpoint)
            {
                await PublishAsync(id, new CheckpointCreated(checkpoint.Id, checkpoint.Message, checkpoint.CreatedAt, turn));
            }
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Checkpoint of {ProjectId} failed", id);
            await PublishAsync(id, new BuildLog($"Could not save a checkpoint: {e.Message}", "warn"));
        }
    }

    private ProjectState Save(ProjectState state)
    {
        states.Save(state);
        return state;
    }

    private async Task CancelledAsync(Guid id, CancellationToken shuttingDown) =>
        await PublishAsync(id, new BuildCancelled(shuttingDown.IsCancellationRequested ? "The runner is shutting down." : "Cancelled by the user."));

    private ValueTask PublishAsync(Guid projectId, ProjectEvent body) => events.PublishAsync(projectId, body, CancellationToken.None);

    private sealed class RunTotals
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public int Turns { get; private set; }

        public decimal Cost { get; private set; }

        public long Input { get; private set; }

        public long Output { get; private set; }

        public long Elapsed => _clock.ElapsedMilliseconds;

        public void Add(AgentTurnResult result)
        {
            Turns++;
            Cost += result.CostUsd;
            Input += result.InputTokens;
            Output += result.OutputTokens;
        }
    }
}
