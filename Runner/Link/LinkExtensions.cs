using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

public static class LinkExtensions
{
    /// <summary>The link to the broker: options, durable outbox (the <see cref="IEventSink"/>), command journal, client, status file.</summary>
    public static IServiceCollection AddRunnerLink(this IServiceCollection services)
    {
        services.AddOptions<RunnerOptions>().BindConfiguration(RunnerOptions.Section);
        services.AddSingleton<ActiveBuilds>();
        services.AddSingleton<LinkState>();
        services.AddSingleton<CommandResultQueue>();
        services.AddSingleton<ICommandResultReporter>(sp => sp.GetRequiredService<CommandResultQueue>());
        services.AddSingleton(sp =>
        {
            var outbox = new EventOutbox(Path.Combine(sp.GetRequiredService<IOptions<RunnerOptions>>().Value.StateDirectory, "outbox"));
            outbox.Appended += sp.GetRequiredService<ActiveBuilds>().Observe;
            return outbox;
        });
        services.AddSingleton<IEventSink>(sp => sp.GetRequiredService<EventOutbox>());
        services.AddSingleton(sp => new CommandJournal(sp.GetRequiredService<IOptions<RunnerOptions>>().Value.StateDirectory));
        services.AddHostedService<LinkClient>();
        services.AddHostedService<StatusFileWriter>();
        services.AddHealthChecks().AddCheck<LinkHealthCheck>("broker-link");
        return services;
    }

    /// <summary>
    /// The runner's settings by precedence: command-line option, <c>Runner__*</c>, the seed's environment names, then what
    /// <c>login</c> stored. Returned as "Runner:*" keys to lay over the configuration.
    /// </summary>
    public static Dictionary<string, string?> ResolveSettings(IConfiguration configuration, RunnerOptions commandLine)
    {
        var home = RunnerPaths.ResolveHome(commandLine.Home ?? configuration["Runner:Home"] ?? configuration[Protocol.SeedEnvironment.SentryVibeHome]);
        var stored = LoginSettings.Load(home);
        string? Pick(string? cli, string key, string? seed, string? login) =>
            cli ?? configuration[$"{RunnerOptions.Section}:{key}"] ?? (seed is null ? null : configuration[seed]) ?? login;

        return new Dictionary<string, string?>
        {
            ["Runner:Home"] = home,
            ["Runner:BrokerUrl"] = Pick(commandLine.BrokerUrl, "BrokerUrl", Protocol.SeedEnvironment.BrokerUrl, stored?.BrokerUrl),
            ["Runner:Token"] = Pick(commandLine.Token, "Token", Protocol.SeedEnvironment.SharedSecret, stored?.Token),
            ["Runner:Id"] = Pick(commandLine.Id, "Id", Protocol.SeedEnvironment.RunnerId, stored?.RunnerId),
            ["Runner:Name"] = Pick(commandLine.Name, "Name", null, null),
            ["Runner:Workspace"] = Pick(commandLine.Workspace, "Workspace", Protocol.SeedEnvironment.WorkspaceRoot, null),
        };
    }
}

/// <summary>Healthy while linked; degraded (still 200, the process is fine) while reconnecting.</summary>
public sealed class LinkHealthCheck(LinkState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.State == LinkStates.Connected
            ? HealthCheckResult.Healthy("linked to broker " + state.BrokerId)
            : HealthCheckResult.Degraded($"link {state.State}{(state.LastError is null ? "" : ": " + state.LastError)}"));
}

/// <summary>What <c>sentryvibe-runner login</c> stores in <c>$SENTRYVIBE_HOME/runner.json</c> (mode 600: it holds a token).</summary>
public sealed record LoginSettings(string BrokerUrl, string Token, string? RunnerId = null)
{
    public const string FileName = "runner.json";

    public static LoginSettings? Load(string home)
    {
        var path = Path.Combine(home, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<LoginSettings>(File.ReadAllText(path), Protocol.LinkProtocol.JsonOptions);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    public string Save(string home)
    {
        OwnerOnly.Directory(home);
        var path = Path.Combine(home, FileName);
        var temp = path + ".tmp";
        using (var stream = OwnerOnly.Open(temp))
        {
            System.Text.Json.JsonSerializer.Serialize(stream, this, RunnerStatusFile.Json);
        }
        File.Move(temp, path, overwrite: true);
        return path;
    }
}
