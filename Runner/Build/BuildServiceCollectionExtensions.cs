using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using SentryVibe.Protocol;
using SentryVibe.Runner.Agents;
using SentryVibe.Runner.Checkpoints;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

public static class BuildServiceCollectionExtensions
{
    /// <summary>
    /// Registers the build side of the runner: workspace, project state, templates, checkpoints, agents and the
    /// <see cref="ICommandHandler"/>. Needs an <see cref="IEventSink"/> (the link's outbox); uses an
    /// <see cref="IDevServerControl"/> when one is registered.
    /// </summary>
    public static IServiceCollection AddRunnerBuild(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<WorkspaceOptions>()
            .Bind(configuration.GetSection(WorkspaceOptions.Section))
            .PostConfigure(o =>
            {
                o.Root ??= configuration[SeedEnvironment.WorkspaceRoot];
                o.Home ??= configuration[SeedEnvironment.SentryVibeHome];
            });
        services.AddOptions<BuildOptions>().Bind(configuration.GetSection(BuildOptions.Section));
        services.AddOptions<AgentOptions>()
            .Bind(configuration.GetSection(AgentOptions.Section))
            .PostConfigure(o =>
            {
                o.AnthropicApiKey ??= configuration["ANTHROPIC_API_KEY"];
                o.AnthropicBaseUrl ??= configuration["ANTHROPIC_BASE_URL"];
                o.OpenAiApiKey ??= configuration["OPENAI_API_KEY"];
                o.OpenAiBaseUrl ??= configuration["OPENAI_BASE_URL"];
            });

        // What every child process gets (Runner:Environment:Allow adds names) and whether agents can be confined.
        services.AddOptions<ChildEnvironmentOptions>().Bind(configuration.GetSection(ChildEnvironmentOptions.Section));
        services.TryAddSingleton<ChildEnvironment>();
        services.TryAddSingleton<AgentSandbox>();

        services.TryAddSingleton<ProjectWorkspace>();
        services.TryAddSingleton<ProjectStateStore>();
        services.TryAddSingleton<CheckpointStore>();
        services.TryAddSingleton<TemplateScaffolder>();

        services.AddSingleton<IAgent, ClaudeCodeAgent>();
        services.AddSingleton<IAgent, CodexAgent>();
        services.AddSingleton<IAgent, AnthropicApiAgent>();
        services.AddSingleton<IAgent, NoneAgent>();
        services.TryAddSingleton<AgentCatalog>();

        services.TryAddSingleton<IProjectLocator, ProjectLocator>();
        services.TryAddSingleton<ActiveBuilds>();
        services.TryAddSingleton<BuildScheduler>();
        services.TryAddSingleton<TurnLoop>();
        services.TryAddSingleton<BuildEngine>();
        services.TryAddSingleton<ICommandHandler, ProjectCommandHandler>();
        return services;
    }
}
