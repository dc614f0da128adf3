// $SENTRYVIBE_HOME: where the AppHost keeps what must survive a restart (API token, runner secret, local
// Postgres data) and where it publishes apphost.json for the UI, the extension and outside checks.
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;

namespace SentryVibe.AppHost.Contract;

public sealed class SentryVibeHome
{
    public const int DefaultWebPort = 5080;
    public const int DefaultBrokerPort = 5090;
    public const string LocalRunnerId = "local";

    private SentryVibeHome(string directory) => Directory = directory;

    public string Directory { get; }
    public string ContractFile => Path.Combine(Directory, "apphost.json");
    public string PostgresDataDirectory => Path.Combine(Directory, "postgres");
    public string ApiToken { get; private init; } = "";
    public string RunnerSharedSecret { get; private init; } = "";
    public int WebPort { get; private init; }
    public int BrokerPort { get; private init; }
    public int RunnerHealthPort { get; private init; }
    public string PreviewDomain { get; private init; } = "";
    public string? WorkspaceRoot { get; private init; }

    /// <summary>
    /// Reads <c>SENTRYVIBE_HOME</c> (default <c>~/.sentryvibe</c>), makes the secrets once and reuses them, and picks
    /// the ports: <c>SentryVibe:WebPort</c>/<c>SentryVibe:BrokerPort</c> when set (0 = any free port), else 5080/5090
    /// when free. Everything comes from configuration so tests can pass it as arguments.
    /// </summary>
    public static SentryVibeHome Load(IConfiguration configuration, bool createSecrets = true)
    {
        var directory = configuration["SENTRYVIBE_HOME"] is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".sentryvibe");
        PrivateFiles.CreateDirectory(directory);

        var brokerPort = Port(configuration, "SentryVibe:BrokerPort", DefaultBrokerPort);
        return new SentryVibeHome(directory)
        {
            ApiToken = createSecrets ? PrivateFiles.Secret(Path.Combine(directory, "api-token")) : "",
            RunnerSharedSecret = createSecrets ? PrivateFiles.Secret(Path.Combine(directory, "runner-secret")) : "",
            WebPort = Port(configuration, "SentryVibe:WebPort", DefaultWebPort),
            BrokerPort = brokerPort,
            RunnerHealthPort = Port(configuration, "SentryVibe:RunnerHealthPort", 0),
            PreviewDomain = configuration["SentryVibe:PreviewDomain"] is { Length: > 0 } domain ? domain : $"preview.localhost:{brokerPort}",
            WorkspaceRoot = configuration["SentryVibe:WorkspaceRoot"] is { Length: > 0 } ws ? Path.GetFullPath(ws) : null,
        };
    }

    private static int Port(IConfiguration configuration, string key, int preferred)
    {
        if (int.TryParse(configuration[key], out var configured))
        {
            return configured == 0 ? FreePort() : configured;
        }
        return preferred != 0 && IsFree(preferred) ? preferred : FreePort();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
