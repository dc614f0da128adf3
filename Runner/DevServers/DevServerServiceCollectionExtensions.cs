using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Previews;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.DevServers;

public static class DevServerServiceCollectionExtensions
{
    /// <summary>
    /// The process supervisor, dev servers (<see cref="IDevServerControl"/>, <see cref="IPreviewTargets"/>) and the
    /// preview URL provider chosen by Preview:Provider. Needs an <see cref="IProjectLocator"/> and an <see cref="IEventSink"/>.
    /// </summary>
    public static IServiceCollection AddRunnerDevServers(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<PreviewOptions>().Bind(configuration.GetSection(PreviewOptions.SectionName))
            .Validate(o => o.Provider is PreviewProviders.Relay or PreviewProviders.Cloudflared or PreviewProviders.Local,
                "Preview:Provider must be relay, cloudflared or local.")
            .ValidateOnStart();
        services.AddOptions<DevServerOptions>().Bind(configuration.GetSection(DevServerOptions.SectionName))
            .PostConfigure<IOptions<WorkspaceOptions>>((o, workspace) =>
                o.InstallCacheDirectory ??= Path.Combine(workspace.Value.ResolvedHome, "cache", "node_modules"));

        // Registered before the dev server manager so the host stops it after it: dev servers stop (and say so)
        // first, then the supervisor makes sure nothing else survives.
        services.AddSingleton<ProcessSupervisor>(sp => new ProcessSupervisor(
            sp.GetService<Microsoft.Extensions.Logging.ILogger<ProcessSupervisor>>()));
        services.AddHostedService(sp => sp.GetRequiredService<ProcessSupervisor>());

        services.AddOptions<ChildEnvironmentOptions>().Bind(configuration.GetSection(ChildEnvironmentOptions.Section));
        services.TryAddSingleton<ChildEnvironment>();

        services.AddSingleton<RelayPreviewUrlProvider>();
        services.AddSingleton<LocalPreviewUrlProvider>();
        services.AddSingleton<CloudflaredPreviewUrlProvider>();
        services.AddSingleton<IPreviewUrlProvider>(sp => sp.GetRequiredService<IOptions<PreviewOptions>>().Value.Provider switch
        {
            PreviewProviders.Cloudflared => sp.GetRequiredService<CloudflaredPreviewUrlProvider>(),
            PreviewProviders.Local => sp.GetRequiredService<LocalPreviewUrlProvider>(),
            _ => sp.GetRequiredService<RelayPreviewUrlProvider>(),
        });

        services.AddSingleton<DevServerManager>();
        services.AddSingleton<IDevServerControl>(sp => sp.GetRequiredService<DevServerManager>());
        services.AddSingleton<IPreviewTargets>(sp => sp.GetRequiredService<DevServerManager>());
        services.AddHostedService(sp => sp.GetRequiredService<DevServerManager>());
        return services;
    }
}
