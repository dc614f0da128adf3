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
        services.AddSingleton<LinkState>();
        services.AddSingleton<CommandResultQueue>();
        services.AddSingleton<ICommandResultReporter>(sp => sp.GetRequiredService<CommandResultQueue>());
        services.AddSingleton(sp => new EventOutbox(Path.Combine(sp.GetRequiredService<IOptions<RunnerOptions>>().Value.StateDirectory, "outbox")));
        services.AddSingleton<IEventSink>(sp => sp.GetRequiredService<EventOutbox>());
        services.AddSingleton(sp => new CommandJournal(sp.GetRequiredService<IOptions<RunnerOptions>>().Value.StateDirectory));
        services.AddHostedService<LinkClient>();
        services.AddHostedService<StatusFileWriter>();
        services.AddHealthChecks().AddCheck<LinkHealthCheck>("broker-link");
        return services;
    }

    /// <summary>
    /// Lays the runner's settings over <paramref name="configuration"/>: the working folder's .env at the bottom, then
    /// what <see cref="ResolveSettings"/> decides on top. Used by <c>run</c>.
    /// </summary>
    public static IConfigurationManager AddRunnerSettings(this IConfigurationManager configuration, RunnerOptions commandLine, string workingDirectory)
    {
        configuration.AddRunnerDotEnv(workingDirectory);
        configuration.AddInMemoryCollection(ResolveSettings(configuration, commandLine));
        return configuration;
    }

    /// <summary>
    /// The runner's settings, each by one precedence (README, "Runner"): command-line flag, then the environment
    /// (<c>Runner__*</c>, then the section's own names, then the seed's names; a .env counts as environment, below real
    /// variables), then what <c>login</c> stored in runner.json, then the default. Empty values count as unset.
    /// Returned as keys to lay over the configuration; the Workspace section gets the same answer as the runner so the
    /// build never reads <c>WORKSPACE_ROOT</c> on its own.
    /// </summary>
    public static Dictionary<string, string?> ResolveSettings(IConfiguration configuration, RunnerOptions commandLine)
    {
        string? Pick(string? flag, string? login, params string[] environment) =>
            Set(flag) ?? environment.Select(name => Set(configuration[name])).FirstOrDefault(v => v is not null) ?? Set(login);

        var home = RunnerPaths.ResolveHome(Pick(commandLine.Home, null, "Runner:Home", Protocol.SeedEnvironment.SentryVibeHome));
        var stored = LoginSettings.Load(home);
        var workspace = Pick(commandLine.Workspace, null, "Runner:Workspace", "Workspace:Root", Protocol.SeedEnvironment.WorkspaceRoot);
        return new Dictionary<string, string?>
        {
            ["Runner:Home"] = home,
            ["Runner:BrokerUrl"] = Pick(commandLine.BrokerUrl, stored?.BrokerUrl, "Runner:BrokerUrl", Protocol.SeedEnvironment.BrokerUrl),
            ["Runner:Token"] = Pick(commandLine.Token, stored?.Token, "Runner:Token", Protocol.SeedEnvironment.SharedSecret),
            ["Runner:Id"] = Pick(commandLine.Id, stored?.RunnerId, "Runner:Id", Protocol.SeedEnvironment.RunnerId),
            ["Runner:Name"] = Pick(commandLine.Name, null, "Runner:Name"),
            ["Runner:Workspace"] = workspace,
            ["Workspace:Root"] = workspace,
            ["Workspace:Home"] = Pick(null, null, "Workspace:Home") ?? home,
        };
    }

    private static string? Set(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
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
