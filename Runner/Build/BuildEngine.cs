using System.Diagnostics;
using CliWrap;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;
using SentryVibe.Runner.Checkpoints;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

/// <summary>
/// Runs the work of projects in the background: builds and follow-up turns (at most
/// <see cref="BuildOptions.MaxConcurrentBuilds"/> at once, the rest queued), restores and deletes. One job per
/// project at a time. Every method validates and returns an error for the user (or null) right away.
/// As a hosted service it stops the builds first when the runner shuts down, and on start reports the builds a killed
/// runner left unfinished.
/// </summary>
public sealed class BuildEngine : IHostedService, IAsyncDisposable
{
    public const string InterruptedReason =
        "The runner stopped in the middle of this build (it was shut down, killed or crashed). Send a message to continue from the last checkpoint.";

    private readonly IEventSink _events;
    private readonly ProjectWorkspace _workspace;
    private readonly ProjectStateStore _states;
    private readonly TemplateScaffolder _scaffolder;
    private readonly CheckpointStore _checkpoints;
    private readonly AgentCatalog _agents;
    private readonly BuildOptions _options;
    private readonly ILogger<BuildEngine> _logger;
    private readonly IDevServerControl? _devServers;
    private readonly ChildEnvironment _environment;

    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, Job> _jobs = [];
    private readonly Dictionary<string, Guid> _reservedSlugs = [];
    private readonly LinkedList<Job> _queue = new();
    private readonly CancellationTokenSource _shutdown = new();
    private int _running;

    public BuildEngine(
        IEventSink events,
        ProjectWorkspace workspace,
        ProjectStateStore states,
        TemplateScaffolder scaffolder,
        CheckpointStore checkpoints,
        AgentCatalog agents,
        IOptions<BuildOptions> options,
        ILogger<BuildEngine> logger,
        IDevServerControl? devServers = null,
        ChildEnvironment? environment = null)
    {
        _environment = environment ?? ChildEnvironment.Default;
        _events = events;
        _workspace = workspace;
        _states = states;
        _scaffolder = scaffolder;
        _checkpoints = checkpoints;
        _agents = agents;
        _options = options.Value;
        _logger = logger;
        _devServers = devServers;
    }

    public bool IsBusy(Guid projectId)
    {
        lock (_gate)
        {
            return _jobs.ContainsKey(projectId);
        }
    }

    /// <summary>Completes when the project's current job (if any) has finished.</summary>
    public Task WhenIdleAsync(Guid projectId)
    {
        lock (_gate)
        {
            return _jobs.TryGetValue(projectId, out var job) ? job.Completion : Task.CompletedTask;
        }
    }

    public string? StartBuild(StartBuild command)
    {
        if (StartBuildRules.PromptProblem(command.Prompt) is { } promptProblem)
        {
            return promptProblem;
        }
        if (Slugs.Problem(command.Slug) is { } slugProblem)
        {
            return slugProblem;
        }
        TemplateManifest? template = null;
        if (string.IsNullOrWhiteSpace(command.TemplateUrl))
        {
            if (string.IsNullOrWhiteSpace(command.TemplateId))
            {
                template = TemplateCatalog.Select(command.Prompt);
            }
            else if ((template = TemplateCatalog.Find(command.TemplateId)) is null)
            {
                return StartBuildRules.UnknownTemplate(command.TemplateId);
            }
        }
        else
        {
            try
            {
                TemplateScaffolder.ValidateUrl(command.TemplateUrl);
            }
            catch (TemplateException e)
            {
                return e.Message;
            }
            template = string.IsNullOrWhiteSpace(command.TemplateId) ? null : TemplateCatalog.Find(command.TemplateId);
        }

        AgentChoice choice;
        try
        {
            choice = _agents.Choose(command.Agent);
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }

        string path;
        try
        {
            _workspace.EnsureRoot();
            path = _workspace.ProjectPath(command.Slug);
        }
        catch (WorkspaceException e)
        {
            return e.Message;
        }

        var existing = _states.Get(command.ProjectId);
        var owner = _states.FindBySlug(command.Slug);
        if (owner is not null && owner.ProjectId != command.ProjectId)
        {
            return $"The folder '{command.Slug}' belongs to another project; choose another name.";
        }
        // A StartBuild for a project that already has checkpoints (e.g. re-sent after a runner restart) continues it.
        var resume = existing is not null && _checkpoints.HasCheckpoints(path);
        if (!resume && Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            return $"The folder {path} already exists and is not empty; choose another project name.";
        }

        var templateId = template?.Id ?? (string.IsNullOrWhiteSpace(command.TemplateId) ? "git" : command.TemplateId);
        var state = existing ?? new ProjectState(
            command.ProjectId, command.Slug, path, templateId, choice.Agent.Name,
            TemplateUrl: command.TemplateUrl, PreviewId: command.PreviewId, CreatedAt: DateTimeOffset.UtcNow);

        return Enqueue(command.ProjectId, command.Slug, usesSlot: true, (job, ct) => BuildAsync(command, state, template, choice, resume, ct));
    }

    public string? FollowUp(FollowUpTurn command)
    {
        if (StartBuildRules.PromptProblem(command.Prompt) is { } promptProblem)
        {
            return promptProblem;
        }
        if (_states.Get(command.ProjectId) is not { } state)
        {
            return "This runner does not know the project (it was never built here or was deleted).";
        }
        if (!Directory.Exists(state.Path))
        {
            return $"The project folder {state.Path} is missing.";
        }
        AgentChoice choice;
        try
        {
            choice = _agents.Choose(state.Agent);
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
        return Enqueue(command.ProjectId, state.Slug, usesSlot: true, (job, ct) => FollowUpAsync(command, state, choice, ct));
    }

    public string? Cancel(CancelBuild command)
    {
        lock (_gate)
        {
            if (!_jobs.TryGetValue(command.ProjectId, out var job) || job.Kind != JobKind.Turns)
            {
                return "No build is running for this project.";
            }
            for (var j = job; j is not null; j = j.Previous)
            {
                j.Cancel();
            }
            return null;
        }
    }

    public string? Restore(RestoreCheckpoint command, Guid commandId)
    {
        if (_states.Get(command.ProjectId) is not { } state)
        {
            return "This runner does not know the project.";
        }
        try
        {
            _checkpoints.Find(state.Path, command.CheckpointId);
        }
        catch (CheckpointNotFoundException e)
        {
            return e.Message;
        }
        return Enqueue(command.ProjectId, state.Slug, usesSlot: false, (job, ct) => RestoreAsync(command, commandId, state), JobKind.Restore);
    }

    /// <summary>Stops whatever the project is doing, stops its dev server and removes its folder and state.</summary>
    public string? Delete(DeleteProject command)
    {
        var state = _states.Get(command.ProjectId);
        Job? previous;
        var job = new Job(command.ProjectId, state?.Slug, JobKind.Delete, usesSlot: false, _shutdown.Token);
        lock (_gate)
        {
            if (_jobs.TryGetValue(command.ProjectId, out previous) && previous.Kind == JobKind.Delete)
            {
                return null; // already being deleted
            }
            for (var j = previous; j is not null; j = j.Previous)
            {
                j.Cancel();
            }
            _jobs[command.ProjectId] = job;
        }
        job.Start(() => RunJobAsync(job, async ct =>
        {
            if (previous is not null)
            {
                await previous.Completion;
            }
            await DeleteAsync(command.ProjectId, state);
        }));
        return null;
    }

    private string? Enqueue(Guid projectId, string slug, bool usesSlot, Func<Job, CancellationToken, Task> work, JobKind kind = JobKind.Turns)
    {
        var job = new Job(projectId, slug, kind, usesSlot, _shutdown.Token);
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested)
            {
                return "The runner is shutting down.";
            }
            if (_jobs.TryGetValue(projectId, out var busy))
            {
                if (busy.Kind == JobKind.Delete)
                {
                    return "The project is being deleted.";
                }
                if (kind == JobKind.Restore)
                {
                    return "The project is busy with a build; wait for it or cancel it before restoring.";
                }
                // A follow-up sent while the previous turn is finishing (or running) runs right after it.
                job.Previous = busy;
            }
            if (_reservedSlugs.TryGetValue(slug, out var other) && other != projectId)
            {
                return $"The folder '{slug}' is being used by another project right now.";
            }
            if (kind == JobKind.Turns)
            {
                _states.Building.Set(projectId);
            }
            _jobs[projectId] = job;
            _reservedSlugs[slug] = projectId;
        }
        job.Start(() => RunJobAsync(job, ct => work(job, ct)));
        return null;
    }

    private async Task RunJobAsync(Job job, Func<CancellationToken, Task> work)
    {
        var slotHeld = false;
        try
        {
            if (job.Previous is { } previous)
            {
                await previous.Completion;
                job.Previous = null;
                job.Token.ThrowIfCancellationRequested();
            }
            if (job.UsesSlot)
            {
                slotHeld = await AcquireSlotAsync(job);
                if (!slotHeld)
                {
                    await PublishAsync(job.ProjectId, new BuildCancelled("Cancelled while queued."));
                    return;
                }
            }
            await work(job.Token);
        }
        catch (OperationCanceledException) when (job.Token.IsCancellationRequested)
        {
            await PublishAsync(job.ProjectId, new BuildCancelled("Cancelled before it started."));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Job {Kind} of project {ProjectId} failed", job.Kind, job.ProjectId);
        }
        finally
        {
            if (slotHeld)
            {
                ReleaseSlot();
            }
            lock (_gate)
            {
                if (_jobs.TryGetValue(job.ProjectId, out var current) && current == job)
                {
                    _jobs.Remove(job.ProjectId);
                }
                if (!_jobs.ContainsKey(job.ProjectId))
                {
                    // Whatever the job published last (completed, failed, cancelled) is the truth now.
                    _states.Building.Clear(job.ProjectId);
                }
                if (job.Slug is not null && _reservedSlugs.TryGetValue(job.Slug, out var owner) && owner == job.ProjectId
                    && !_jobs.ContainsKey(job.ProjectId))
                {
                    _reservedSlugs.Remove(job.Slug);
                }
            }
        }
    }

    /// <summary>True once the job holds a slot; false when it was cancelled while waiting.</summary>
    private async Task<bool> AcquireSlotAsync(Job job)
    {
        int position;
        lock (_gate)
        {
            if (_running < Math.Max(1, _options.MaxConcurrentBuilds))
            {
                _running++;
                return true;
            }
            _queue.AddLast(job);
            position = _queue.Count;
        }
        await PublishAsync(job.ProjectId, new BuildQueued(position));
        try
        {
            await job.SlotGranted.Task.WaitAsync(job.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                if (_queue.Remove(job))
                {
                    return false;
                }
            }
            // Granted at the same moment it was cancelled: the slot is ours to give back.
            ReleaseSlot();
            return false;
        }
    }

    private void ReleaseSlot()
    {
        List<(Guid ProjectId, int Position)> moved = [];
        lock (_gate)
        {
            if (_queue.First is { } next)
            {
                _queue.RemoveFirst();
                next.Value.SlotGranted.TrySetResult();
                var position = 1;
                foreach (var waiting in _queue)
                {
                    moved.Add((waiting.ProjectId, position++));
                }
            }
            else
            {
                _running--;
            }
        }
        foreach (var (projectId, position) in moved)
        {
            _ = PublishAsync(projectId, new BuildQueued(position)).AsTask();
        }
    }

    private async Task BuildAsync(StartBuild command, ProjectState state, TemplateManifest? template, AgentChoice choice, bool resume, CancellationToken ct)
    {
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
                manifest = await _scaffolder.ScaffoldAsync(state.Path, template, command.TemplateUrl, m => PublishAsync(id, new BuildLog(m)), ct);
                var scaffold = _checkpoints.Commit(state.Path, $"Scaffold {manifest.Id}", allowEmpty: true)!;
                _states.Save(state with { TemplateId = manifest.Id });
                await PublishAsync(id, new CheckpointCreated(scaffold.Id, scaffold.Message, scaffold.CreatedAt, 0));
            }
            state = _states.Get(id)!;
            await PublishAsync(id, ProjectInspector.Metadata(state.Path, manifest, state.SessionId));

            var ok = await RunTurnsAsync(state, choice.Agent, manifest, command.Prompt, announceFirst: false, run, ct);
            if (ok && choice.Agent.Name != Protocol.Agents.None)
            {
                ok = await VerifyAsync(id, choice.Agent, manifest, run, ct);
            }
            if (ok)
            {
                await CompleteAsync(id, manifest, run);
                if (command.StartDevServerWhenReady)
                {
                    await StartDevServerAsync(id, command.PreviewId);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CancelledAsync(id);
        }
        catch (Exception e) when (e is TemplateException or WorkspaceException)
        {
            await PublishAsync(id, new BuildFailed(e.Message));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Build of {ProjectId} failed", id);
            await FailAsync(id, $"The build failed: {e.Message}");
        }
    }

    private async Task FollowUpAsync(FollowUpTurn command, ProjectState state, AgentChoice choice, CancellationToken ct)
    {
        var id = command.ProjectId;
        var run = new RunTotals();
        try
        {
            var manifest = ManifestFor(state);
            var ok = await RunTurnsAsync(state, choice.Agent, manifest, command.Prompt, announceFirst: true, run, ct);
            if (ok)
            {
                await CompleteAsync(id, manifest, run);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CancelledAsync(id);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Follow-up of {ProjectId} failed", id);
            await FailAsync(id, $"The turn failed: {e.Message}");
        }
    }

    /// <summary>
    /// One agent turn, a checkpoint, and up to <see cref="BuildOptions.MaxAutoResumes"/> more turns while todos stay open.
    /// False when a turn failed (BuildFailed is already published).
    /// </summary>
    private async Task<bool> RunTurnsAsync(ProjectState state, IAgent agent, TemplateManifest manifest, string prompt, bool announceFirst, RunTotals run, CancellationToken ct)
    {
        var id = state.ProjectId;
        var turnPrompt = prompt;
        string? reason = null;
        var announce = announceFirst;
        for (var resumes = 0; ; resumes++)
        {
            var result = await TurnAsync(state, agent, manifest, turnPrompt, reason, announce, run, ct);
            state = _states.Get(id)!;
            if (!result.Success)
            {
                await PublishAsync(id, new BuildFailed(result.Error ?? "The agent failed."));
                return false;
            }
            var open = result.OpenTodos;
            if (open.Count == 0 || agent.Name == Protocol.Agents.None)
            {
                return true;
            }
            if (resumes >= _options.MaxAutoResumes)
            {
                await PublishAsync(id, new BuildLog($"{open.Count} todo(s) are still open after {resumes} automatic resumes; stopping here.", "warn"));
                return true;
            }
            reason = $"{open.Count} todo(s) still open";
            turnPrompt = "You stopped before finishing. These todos are still open:\n"
                + string.Join("\n", open.Select(t => $"- {t.Content} ({t.Status})"))
                + "\nContinue and complete them, marking each one completed when it is done.";
            announce = true;
        }
    }

    private async Task<AgentTurnResult> TurnAsync(ProjectState state, IAgent agent, TemplateManifest manifest, string prompt, string? reason, bool announce, RunTotals run, CancellationToken ct)
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
        var context = new AgentTurnContext(id, state.Path, manifest, _events, AgentInstructions.For(manifest, state.Path, ProjectInspector.DetectRunCommand(state.Path)));
        AgentTurnResult result;
        try
        {
            result = await agent.RunTurnAsync(context, prompt, state.SessionId, ct);
        }
        finally
        {
            // Whatever the agent wrote is kept as a checkpoint, even when the turn was cancelled or failed.
            _states.Update(id, s => s with { Turns = turn });
            var label = ct.IsCancellationRequested ? "Cancelled turn" : "Turn";
            await CheckpointAsync(id, state.Path, $"{label} {turn}: {prompt}", turn);
        }
        _states.Update(id, s => s with { SessionId = result.SessionId ?? s.SessionId });
        run.Add(result);
        return result;
    }

    /// <summary>Runs the template's build command when dependencies are installed; one fix turn on failure.</summary>
    private async Task<bool> VerifyAsync(Guid id, IAgent agent, TemplateManifest manifest, RunTotals run, CancellationToken ct)
    {
        var state = _states.Get(id)!;
        if (!_options.VerifyBuild || string.IsNullOrWhiteSpace(manifest.BuildCommand) || !Directory.Exists(Path.Join(state.Path, "node_modules")))
        {
            return true;
        }
        var (passed, output) = await RunCheckAsync(id, state.Path, manifest.BuildCommand, ct);
        if (passed)
        {
            return true;
        }
        var prompt = $"`{manifest.BuildCommand}` fails with:\n```\n{output}\n```\nFix the errors so the build passes.";
        var result = await TurnAsync(state, agent, manifest, prompt, "the build check failed", announce: true, run, ct);
        if (!result.Success)
        {
            await PublishAsync(id, new BuildFailed(result.Error ?? "The fix turn failed."));
            return false;
        }
        var (passedAfterFix, _) = await RunCheckAsync(id, state.Path, manifest.BuildCommand, ct);
        if (!passedAfterFix)
        {
            await PublishAsync(id, new BuildLog($"`{manifest.BuildCommand}` still fails after one fix turn; the dev server may still work.", "warn"));
        }
        return true;
    }

    private async Task<(bool Passed, string Output)> RunCheckAsync(Guid id, string path, string commandLine, CancellationToken ct)
    {
        await PublishAsync(id, new BuildLog($"Checking the build: {commandLine}"));
        var lines = new Queue<string>();
        void Keep(string line)
        {
            lines.Enqueue(line);
            if (lines.Count > 60)
            {
                lines.Dequeue();
            }
        }
        var shell = OperatingSystem.IsWindows() ? Cli.Wrap("cmd").WithArguments(["/c", commandLine]) : Cli.Wrap("/bin/sh").WithArguments(["-c", commandLine]);
        var outcome = await CliProcess.RunAsync(
            shell.WithWorkingDirectory(path).WithStandardInputPipe(PipeSource.Null).WithEnvironmentVariables(_environment.For(set: [new("CI", "1")])),
            l => { Keep(l); return ValueTask.CompletedTask; },
            l => { Keep(l); return ValueTask.CompletedTask; },
            _options.VerifyTimeout,
            ct);
        ct.ThrowIfCancellationRequested();
        var output = string.Join("\n", lines);
        var passed = outcome.ExitCode == 0;
        await PublishAsync(id, passed
            ? new BuildLog("The build check passed.")
            : new BuildLog(outcome.TimedOut ? $"The build check timed out after {_options.VerifyTimeout}." : $"The build check failed (exit code {outcome.ExitCode}).", "error"));
        return (passed, output);
    }

    private async Task CompleteAsync(Guid id, TemplateManifest manifest, RunTotals run)
    {
        var state = _states.Get(id)!;
        await PublishAsync(id, ProjectInspector.Metadata(state.Path, manifest, state.SessionId));
        await PublishAsync(id, new BuildCompleted(run.Turns, run.Elapsed, run.Cost, run.Input, run.Output, state.SessionId));
    }

    private async Task RestoreAsync(RestoreCheckpoint command, Guid commandId, ProjectState state)
    {
        try
        {
            var checkpoint = _checkpoints.Restore(state.Path, command.CheckpointId);
            await PublishAsync(state.ProjectId, new BuildLog($"Restored checkpoint {command.CheckpointId[..Math.Min(7, command.CheckpointId.Length)]}."));
            await PublishAsync(state.ProjectId, new CheckpointCreated(checkpoint.Id, checkpoint.Message, checkpoint.CreatedAt));
            await PublishAsync(state.ProjectId, ProjectInspector.Metadata(state.Path, ManifestFor(state), state.SessionId));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Restore of {ProjectId} failed", state.ProjectId);
            await PublishAsync(state.ProjectId, new CommandFailed(commandId, CommandTypes.RestoreCheckpoint, e.Message));
        }
    }

    private async Task DeleteAsync(Guid id, ProjectState? state)
    {
        if (_devServers is not null)
        {
            try
            {
                await _devServers.StopAsync(id, CancellationToken.None);
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Stopping the dev server of {ProjectId} failed", id);
            }
        }
        if (state is not null)
        {
            // The folder is derived from the slug again so a tampered state file cannot point outside the workspace.
            var path = _workspace.ProjectPath(state.Slug);
            FileSystem.DeleteDirectory(path);
            _states.Delete(id);
        }
        await PublishAsync(id, new ProjectDeleted());
    }

    private async Task StartDevServerAsync(Guid id, string? previewId)
    {
        if (_devServers is null)
        {
            await PublishAsync(id, new BuildLog("This runner has no dev-server support; start the app yourself.", "warn"));
            return;
        }
        try
        {
            await _devServers.StartAsync(id, previewId, _shutdown.Token);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Starting the dev server of {ProjectId} failed", id);
            await PublishAsync(id, new BuildLog($"The dev server did not start: {e.Message}", "error"));
        }
    }

    private async Task CheckpointAsync(Guid id, string path, string message, int turn)
    {
        try
        {
            if (Directory.Exists(path) && _checkpoints.Commit(path, message) is { } checkpoint)
            {
                await PublishAsync(id, new CheckpointCreated(checkpoint.Id, checkpoint.Message, checkpoint.CreatedAt, turn));
            }
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Checkpoint of {ProjectId} failed", id);
            await PublishAsync(id, new BuildLog($"Could not save a checkpoint: {e.Message}", "warn"));
        }
    }

    private async Task CancelledAsync(Guid id) =>
        await PublishAsync(id, new BuildCancelled(_shutdown.IsCancellationRequested ? "The runner is shutting down." : "Cancelled by the user."));

    private Task FailAsync(Guid id, string reason) => PublishAsync(id, new BuildFailed(reason)).AsTask();

    private TemplateManifest ManifestFor(ProjectState state) =>
        state.TemplateUrl is null && TemplateCatalog.Find(state.TemplateId) is { } builtIn
            ? builtIn
            : ProjectInspector.InferManifest(state.Path, state.TemplateId);

    private ValueTask PublishAsync(Guid projectId, ProjectEvent body) => _events.PublishAsync(projectId, body, CancellationToken.None);

    /// <summary>
    /// A build still marked as under way belongs to a runner that did not live to finish it: say so, or the project
    /// stays "building" for ever. Runs as the runner starts, before its link is usually up; a project that already
    /// has new work by then is left to that work's own events.
    /// </summary>
    async Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        foreach (var projectId in _states.Building.List())
        {
            if (IsBusy(projectId))
            {
                continue;
            }
            _logger.LogWarning("The build of {ProjectId} was interrupted when the runner last stopped", projectId);
            await PublishAsync(projectId, new BuildFailed(InterruptedReason));
            lock (_gate)
            {
                if (!_jobs.ContainsKey(projectId))
                {
                    _states.Building.Clear(projectId);
                }
            }
        }
    }

    /// <summary>
    /// Runner shutdown: the builds are cancelled first, while the outbox still takes their last checkpoint and
    /// "cancelled" event; an orchestrator gives a stopping process only a few seconds before it kills it.
    /// </summary>
    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await StopJobsAsync().WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopJobsAsync().WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);
        _shutdown.Dispose();
    }

    private Task StopJobsAsync()
    {
        lock (_gate)
        {
            // Called by the host's stop and by disposal (twice: the container owns the engine under both registrations).
            if (!_shutdown.IsCancellationRequested)
            {
                _shutdown.Cancel();
            }
            return Task.WhenAll(_jobs.Values.Select(j => j.Completion).ToArray());
        }
    }

    private enum JobKind
    {
        Turns,
        Restore,
        Delete,
    }

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

    private sealed class Job(Guid projectId, string? slug, JobKind kind, bool usesSlot, CancellationToken shutdown)
    {
        private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Guid ProjectId { get; } = projectId;

        public string? Slug { get; } = slug;

        public JobKind Kind { get; } = kind;

        public bool UsesSlot { get; } = usesSlot;

        public CancellationToken Token => _cts.Token;

        public TaskCompletionSource SlotGranted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The project's job this one waits for (a follow-up queued behind a running turn).</summary>
        public Job? Previous { get; set; }

        public Task Completion => _completion.Task;

        public void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already finished.
            }
        }

        public void Start(Func<Task> body) =>
            _ = Task.Run(async () =>
            {
                try
                {
                    await body();
                }
                finally
                {
                    _completion.TrySetResult();
                    _cts.Dispose();
                }
            });
    }
}
