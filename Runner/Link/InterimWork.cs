// Stand-ins for the build engine (Runner/Build) and dev servers (Runner/DevServers) until those branches merge.
// Merge point: AddRunnerWork is the one place that chooses the work; swap its body for
//   services.AddRunnerBuild(configuration); services.AddRunnerDevServers(configuration);
// and delete this file's Interim* classes.
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

public static class RunnerWorkExtensions
{
    /// <summary>Registers what carries out commands and what previews may reach. TryAdd: a host (or test) may bring its own.</summary>
    public static IServiceCollection AddRunnerWork(this IServiceCollection services, IConfiguration configuration)
    {
        _ = configuration;
        services.TryAddSingleton<ICommandHandler, InterimCommandHandler>();
        services.TryAddSingleton<IPreviewTargets, InterimPreviewTargets>();
        return services;
    }
}

/// <summary>Acknowledges every command and says so in the project's log; does no work.</summary>
internal sealed class InterimCommandHandler(IEventSink events, ILogger<InterimCommandHandler> logger) : ICommandHandler
{
    public async Task<CommandAck> HandleAsync(CommandEnvelope envelope, CancellationToken cancellationToken)
    {
        logger.LogWarning("Command {Id} ({Type}) received, but this runner build has no build engine wired in", envelope.Id, envelope.Command.GetType().Name);
        await events.PublishAsync(envelope.Command.ProjectId,
            new BuildLog($"The runner received {envelope.Command.GetType().Name} but has no build engine in this build.", "warn"), cancellationToken);
        return new CommandAck(envelope.Id, Accepted: true);
    }
}

/// <summary>No dev servers, so no preview may open.</summary>
internal sealed class InterimPreviewTargets : IPreviewTargets
{
    public int? GetDevServerPort(Guid projectId) => null;
}
