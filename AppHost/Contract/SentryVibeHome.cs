// $SENTRYVIBE_HOME: where the AppHost keeps what must survive a restart (API token, runner secret, local
// Postgres data) and where it publishes apphost.json for the UI, the extension and outside checks.
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
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
        CreatePrivateDirectory(directory);

        var brokerPort = Port(configuration, "SentryVibe:BrokerPort", DefaultBrokerPort);
        return new SentryVibeHome(directory)
        {
            ApiToken = createSecrets ? Secret(directory, "api-token") : "",
            RunnerSharedSecret = createSecrets ? Secret(directory, "runner-secret") : "",
            WebPort = Port(configuration, "SentryVibe:WebPort", DefaultWebPort),
            BrokerPort = brokerPort,
            RunnerHealthPort = Port(configuration, "SentryVibe:RunnerHealthPort", 0),
            PreviewDomain = configuration["SentryVibe:PreviewDomain"] is { Length: > 0 } domain ? domain : $"preview.localhost:{brokerPort}",
            WorkspaceRoot = configuration["SentryVibe:WorkspaceRoot"] is { Length: > 0 } ws ? Path.GetFullPath(ws) : null,
        };
    }

    /// <summary>A random secret kept in a file only the current user can read; made on first use, then reused.</summary>
    private static string Secret(string directory, string name)
    {
        var path = Path.Combine(directory, name);
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: >= 32 } existing)
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // an older version may have left it looser
            return existing;
        }

        var value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        WritePrivate(path, value + "\n");
        return value;
    }

    /// <summary>
    /// Creates the home as 0700 whatever the umask, or takes read and write away from group and others on one made
    /// looser before (docs/security.md). Traverse bits stay: a root AppHost lets its Postgres service user reach the
    /// data folder through them (LocalPostgres/PostgresCluster.cs). The runner applies the same rule to what it
    /// keeps here (Runner/Core/OwnerOnly.cs); the two share no library for file-system code.
    /// </summary>
    public static void CreatePrivateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
            return;
        }
        if (!System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        const UnixFileMode looser = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
        var mode = File.GetUnixFileMode(directory);
        if ((mode & looser) != 0) File.SetUnixFileMode(directory, mode & ~looser);
    }

    /// <summary>Writes a file with mode 600 (atomically: readers never see it half written or world-readable).</summary>
    public static void WritePrivate(string path, string content)
    {
        var temp = path + ".tmp-" + Environment.ProcessId;
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(temp, options))
        {
            writer.Write(content);
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
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
