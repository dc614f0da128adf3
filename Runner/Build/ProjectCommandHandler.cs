using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Build;

/// <summary>
/// The runner's <see cref="ICommandHandler"/>: validates each command, answers at once (accepted, or refused with
/// the reason the user sees) and leaves the work to <see cref="BuildEngine"/> or the dev-server supervisor.
/// </summary>
public sealed class ProjectCommandHandler(
    BuildEngine engine,
    IEventSink events,
    ILogger<ProjectCommandHandler> logger,
    IDevServerControl? devServers = null) : ICommandHandler
{
    public Task<CommandAck> HandleAsync(CommandEnvelope envelope, CancellationToken cancellationToken)
    {
        var error = envelope.Command switch
        {
            StartBuild c => engine.StartBuild(c),
            FollowUpTurn c => engine.FollowUp(c),
            CancelBuild c => engine.Cancel(c),
            RestoreCheckpoint c => engine.Restore(c, envelope.Id),
            DeleteProject c => engine.Delete(c),
            StartDevServer c => DevServer(envelope.Id, CommandTypes.StartDevServer, c.ProjectId, (d, ct) => d.StartAsync(c.ProjectId, c.PreviewId, ct)),
            StopDevServer c => DevServer(envelope.Id, CommandTypes.StopDevServer, c.ProjectId, (d, ct) => d.StopAsync(c.ProjectId, ct)),
            null => "The command is empty.",
            var c => $"This runner does not understand the command {c.GetType().Name}.",
        };
        if (error is not null)
        {
            logger.LogInformation("Refused {Command} {CommandId} for {ProjectId}: {Error}", envelope.Command?.GetType().Name, envelope.Id, envelope.Command?.ProjectId, error);
        }
        return Task.FromResult(new CommandAck(envelope.Id, error is null, Error: error));
    }

    private string? DevServer(Guid commandId, string type, Guid projectId, Func<IDevServerControl, CancellationToken, Task> action)
    {
        if (devServers is null)
        {
            return "This runner has no dev-server support.";
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await action(devServers, CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "{Type} for {ProjectId} failed", type, projectId);
                await events.PublishAsync(projectId, new CommandFailed(commandId, type, e.Message));
            }
        });
        return null;
    }
}
