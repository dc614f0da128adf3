// The one place that chooses the runner's work: the build engine (Runner/Build) and the dev servers (Runner/DevServers).
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Link;

public static class RunnerWorkExtensions
{
    /// <summary>Registers what carries out commands and what previews may reach.</summary>
    public static IServiceCollection AddRunnerWork(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddHostedService<PreviousRunSweeper>();
        services.AddRunnerBuild(configuration);
        services.AddRunnerDevServers(configuration);
        // Hosted services stop in reverse order: registered last, the builds stop (and say so) before anything else.
        services.AddHostedService(sp => sp.GetRequiredService<BuildEngine>());
        services.AddSingleton<IBrokerInfo, BrokerInfo>();
        // Next to the outbox: a crashed runner's dev servers are reported stopped when it starts again.
        services.AddOptions<DevServerOptions>().PostConfigure<IOptions<RunnerOptions>>(
            (o, runner) => o.StateDirectory ??= Path.Combine(runner.Value.StateDirectory, "dev-servers"));
        // `run --workspace` and the runner's home reach the build through the runner's own settings.
        services.PostConfigure<WorkspaceOptions>(o =>
        {
            o.Root ??= configuration["Runner:Workspace"];
            o.Home ??= configuration["Runner:Home"];
        });
        return services;
    }
}
