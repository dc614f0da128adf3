using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;
using SentryVibe.Runner.Checkpoints;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

/// <summary>
/// The build side's front: checks each project command against what this runner knows and answers at once (null, or
/// the reason for the user), then hands the work to the <see cref="BuildScheduler"/>; builds and follow-ups run in the
/// <see cref="TurnLoop"/>, restores and deletes here. As a hosted service it reports the builds a killed runner left
/// unfinished on start, and stops the builds first when the runner shuts down.
/// </summary>
public sealed class BuildEngine(
    BuildScheduler scheduler,
    TurnLoop turns,
    ActiveBuilds active,
    IEventSink events,
    ProjectWorkspace workspace,
    ProjectStateStore states,
    CheckpointStore checkpoints,
    AgentCatalog agents,
    ILogger<BuildEngine> logger,
    IDevServerControl? devServers = null) : IHostedService
{
    public const string InterruptedReason =
        "The runner stopped in the middle of this build (it was shut down, killed or crashed). Send a message to continue from the last checkpoint.";

    public bool IsBusy(Guid projectId) => scheduler.IsBusy(projectId);

    /// <summary>Completes when the project's current job (if any) has finished.</summary>
    public Task WhenIdleAsync(Guid projectId) => scheduler.WhenIdleAsync(projectId);

    public string? StartBuild(StartBuild command)
    {
        var check = StartBuildRules.Check(command.Prompt, command.TemplateId, command.TemplateUrl, command.Agent, agents.Names);
        if (check.FirstError is { } problem)
        {
            return problem;
        }
        if (Slugs.Problem(command.Slug) is { } slugProblem)
        {
            return slugProblem;
        }
        if (check.TemplateUrl is { } url)
        {
            try
            {
                // Syntax is the shared rule's; whether a local repository exists only the runner can tell.
                TemplateScaffolder.ValidateUrl(url);
            }
            catch (TemplateException e)
            {
                return e.Message;
            }
        }

        AgentChoice choice;
        string path;
        try
        {
            choice = agents.Choose(check.Agent);
            workspace.EnsureRoot();
            path = workspace.ProjectPath(command.Slug);
        }
        catch (Exception e) when (e is ArgumentException or WorkspaceException)
        {
            return e.Message;
        }

        var existing = states.Get(command.ProjectId);
        var owner = states.FindBySlug(command.Slug);
        if (owner is not null && owner.ProjectId != command.ProjectId)
        {
            return $"The folder '{command.Slug}' belongs to another project; choose another name.";
        }
        // A StartBuild for a project that already has checkpoints (e.g. re-sent after a runner restart) continues it.
        var resume = existing is not null && checkpoints.HasCheckpoints(path);
        if (!resume && Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            return $"The folder {path} already exists and is not empty; choose another project name.";
        }

        var state = existing ?? new ProjectState(
            command.ProjectId, command.Slug, path, check.Template?.Id ?? "git", choice.Agent.Name,
            TemplateUrl: check.TemplateUrl, PreviewId: command.PreviewId, CreatedAt: DateTimeOffset.UtcNow);
        var build = new PlannedBuild(command with { TemplateUrl = check.TemplateUrl }, state, check.Template, choice, resume);
        return scheduler.Enqueue(command.ProjectId, command.Slug, JobKind.Turns, ct => turns.BuildAsync(build, scheduler.ShuttingDown, ct));
    }

    public string? FollowUp(FollowUpTurn command)
    {
        if (StartBuildRules.PromptProblem(command.Prompt) is { } promptProblem)
        {
            return promptProblem;
        }
        if (states.Get(command.ProjectId) is not { } state)
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
            choice = agents.Choose(state.Agent);
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
        return scheduler.Enqueue(command.ProjectId, state.Slug, JobKind.Turns, ct => turns.FollowUpAsync(command, state, choice, scheduler.ShuttingDown, ct));
    }

    public string? Cancel(CancelBuild command) => scheduler.CancelTurns(command.ProjectId);

    public string? Restore(RestoreCheckpoint command, Guid commandId)
    {
        if (states.Get(command.ProjectId) is not { } state)
        {
            return "This runner does not know the project.";
        }
        try
        {
            checkpoints.Find(state.Path, command.CheckpointId);
        }
        catch (CheckpointNotFoundException e)
        {
            return e.Message;
        }
        return scheduler.Enqueue(command.ProjectId, state.Slug, JobKind.Restore, _ => RestoreAsync(command, commandId, state));
    }

    /// <summary>Stops whatever the project is doing, stops its dev server and removes its folder and state.</summary>
    public string? Delete(DeleteProject command)
    {
        var state = states.Get(command.ProjectId);
        scheduler.Delete(command.ProjectId, state?.Slug, () => DeleteAsync(command.ProjectId, state));
        return null;
    }

    private async Task RestoreAsync(RestoreCheckpoint command, Guid commandId, ProjectState state)
    {
        try
        {
            var checkpoint = checkpoints.Restore(state.Path, command.CheckpointId);
            await PublishAsync(state.ProjectId, new BuildLog($"Restored checkpoint {command.CheckpointId[..Math.Min(7, command.CheckpointId.Length)]}."));
            await PublishAsync(state.ProjectId, new CheckpointCreated(checkpoint.Id, checkpoint.Message, checkpoint.CreatedAt));
            await PublishAsync(state.ProjectId, ProjectInspector.Metadata(state.Path, TurnLoop.ManifestFor(state), state.SessionId));
        }
        catch (Exception e)
        {
            logger.LogError(e, "Restore of {ProjectId} failed", state.ProjectId);
            await PublishAsync(state.ProjectId, new CommandFailed(commandId, CommandTypes.RestoreCheckpoint, e.Message));
        }
    }

    private async Task DeleteAsync(Guid id, ProjectState? state)
    {
        if (devServers is not null)
        {
            try
            {
                await devServers.StopAsync(id, CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Stopping the dev server of {ProjectId} failed", id);
            }
        }
        if (state is not null)
        {
            // The folder is derived from the slug again so a tampered state file cannot point outside the workspace.
            var path = workspace.ProjectPath(state.Slug);
            FileSystem.DeleteDirectory(path);
            states.Delete(id);
        }
        await PublishAsync(id, new ProjectDeleted());
    }

    private ValueTask PublishAsync(Guid projectId, ProjectEvent body) => events.PublishAsync(projectId, body, CancellationToken.None);

    /// <summary>
    /// A build still marked as under way belongs to a runner that did not live to finish it: say so, or the project
    /// stays "building" for ever. Runs as the runner starts, before its link is usually up; a project that already
    /// has new work by then is left to that work's own events.
    /// </summary>
    async Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        foreach (var projectId in active.LeftByEarlierRun())
        {
            if (IsBusy(projectId))
            {
                continue;
            }
            logger.LogWarning("The build of {ProjectId} was interrupted when the runner last stopped", projectId);
            await PublishAsync(projectId, new BuildFailed(InterruptedReason));
            active.Forget(projectId);
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
            await scheduler.StopAsync().WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
