using SentryVibe.Broker.Link;

namespace Microsoft.Extensions.Hosting;

public static class Extensions
{
    /// <summary>The runner link: authentication, connections, command delivery, event intake, liveness.</summary>
    public static IHostApplicationBuilder AddRunnerLink(this IHostApplicationBuilder builder)
    {
        // Seed compatibility (docs/architecture.md, decision 8): PORT picks the listening port when nothing more specific is set.
        if (builder is WebApplicationBuilder web
            && builder.Configuration[SentryVibe.Protocol.SeedEnvironment.Port] is { Length: > 0 } port
            && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"])
            && string.IsNullOrEmpty(builder.Configuration["urls"]))
        {
            web.WebHost.UseUrls($"http://0.0.0.0:{port}");
        }

        builder.Services.AddOptions<BrokerOptions>()
            .BindConfiguration(BrokerOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) =>
                options.SharedSecret ??= configuration[SentryVibe.Protocol.SeedEnvironment.SharedSecret]);

        builder.Services.AddSingleton<BrokerIdentity>();
        builder.Services.AddSingleton<RunnerAuthenticator>();
        builder.Services.AddSingleton<RunnerConnectionRegistry>();
        builder.Services.AddSingleton<RunnerStore>();
        builder.Services.AddSingleton<CommandStore>();
        builder.Services.AddSingleton<EventIntake>();
        builder.Services.AddSingleton<LinkMetrics>();
        builder.Services.AddSingleton<LinkServices>();
        builder.Services.AddSingleton<SentryVibe.Broker.Previews.PreviewTickets>();
        builder.Services.AddHostedService<CommandDispatcher>();
        builder.Services.AddHostedService<LivenessService>();
        return builder;
    }
}
