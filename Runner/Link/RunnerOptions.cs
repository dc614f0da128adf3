using Microsoft.Extensions.Configuration;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Link;

/// <summary>Settings of a running runner (section "Runner"; the seed's environment names and <c>login</c> feed it too).</summary>
public sealed class RunnerOptions
{
    public const string Section = "Runner";

    /// <summary><c>ws(s)://host[:port]/runner</c>; http(s), a missing path and the seed's <c>/socket</c> are accepted and normalised.</summary>
    public string? BrokerUrl { get; set; }
    public string? Token { get; set; }
    public string? Id { get; set; }
    public string? Name { get; set; }
    public string? Workspace { get; set; }

    /// <summary>$SENTRYVIBE_HOME, default ~/.sentryvibe: login settings, outbox, journal, status.</summary>
    public string? Home { get; set; }

    public string RunnerId => string.IsNullOrWhiteSpace(Id) ? DefaultRunnerId() : Id!;

    public string HomeDirectory => RunnerPaths.ResolveHome(Home);

    /// <summary>Where this runner keeps its durable state: outbox, command journal, status file.</summary>
    public string StateDirectory => Path.Combine(HomeDirectory, "runners", RunnerId);

    public Uri BrokerUri => LinkAddress.Normalize(BrokerUrl ?? throw new InvalidOperationException(
        "No broker URL: pass --broker, set RUNNER_BROKER_URL, or run `sentryvibe-runner login --broker <url> --token <token>`."));

    private static string DefaultRunnerId() =>
        string.IsNullOrWhiteSpace(Environment.MachineName) ? "local" : RunnerIds.FromName(Environment.MachineName);
}

public static class RunnerPaths
{
    public static string ResolveHome(string? configured) =>
        string.IsNullOrWhiteSpace(configured)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".sentryvibe")
            : Path.GetFullPath(configured);

    /// <summary>The home directory as configuration names it (<c>SENTRYVIBE_HOME</c> or <c>Runner:Home</c>).</summary>
    public static string Home(IConfiguration configuration) =>
        ResolveHome(configuration[$"{RunnerOptions.Section}:Home"] ?? configuration[SeedEnvironment.SentryVibeHome]);
}

public static class LinkAddress
{
    /// <summary>Accepts ws, wss, http, https; links to /runner when the URL names only the host or the seed's /socket.</summary>
    public static Uri Normalize(string url)
    {
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"'{url}' is not an absolute URL (expected e.g. ws://localhost:5100 or wss://broker.example.com).");
        }
        var builder = new UriBuilder(uri)
        {
            Scheme = uri.Scheme switch
            {
                "http" or "ws" => "ws",
                "https" or "wss" => "wss",
                _ => throw new ArgumentException($"'{url}' must use ws, wss, http or https."),
            },
        };
        if (uri.IsDefaultPort) builder.Port = -1;
        builder.Path = LinkProtocol.LinkPathFor(builder.Path);
        return builder.Uri;
    }
}
