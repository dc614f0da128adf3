// Runs a PostgreSQL cluster from the machine's server binaries: the AppHost's database when no container
// runtime exists (docs/architecture.md, decision 2), and the throwaway clusters of the tests. One launcher for both.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using SentryVibe.AppHost.Contract;

namespace SentryVibe.LocalPostgres;

/// <summary>
/// One data directory and the server that runs on it. The superuser needs a password (scram-sha-256): a generated
/// one kept in <see cref="PasswordFile"/> (mode 600, beside the data directory unless told otherwise), so other
/// local users cannot log in over 127.0.0.1 (docs/operations.md, "Local Postgres").
/// </summary>
public sealed class PostgresCluster(PostgresBinaries binaries, string dataDirectory, string? passwordFile = null) : IAsyncDisposable
{
    public const string SuperUser = "postgres";
    public const string PasswordFileName = "postgres-password";

    private Process? _server;
    private string? _password;

    public PostgresBinaries Binaries { get; } = binaries;
    public string DataDirectory { get; } = Path.GetFullPath(dataDirectory);
    public int Port { get; private set; }

    /// <summary>Where the superuser's password is kept: <c>$SENTRYVIBE_HOME/postgres-password</c> for the AppHost's cluster.</summary>
    public string PasswordFile { get; } = Path.GetFullPath(passwordFile
        ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataDirectory).TrimEnd(Path.DirectorySeparatorChar))!, PasswordFileName));

    /// <summary>The superuser's password, made on first use (0600 file in a 0700 folder) and reused after.</summary>
    public string Password => _password ??= PrivateFiles.Secret(PasswordFile, minimumLength: 16);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The superuser's connection string for <paramref name="database"/> on this cluster (on <paramref name="port"/> when given).</summary>
    public string ConnectionStringFor(string database, int? port = null) =>
        new Npgsql.NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port ?? Port,
            Username = SuperUser,
            Password = Password,
            Database = database,
        }.ConnectionString;

    /// <summary>
    /// Makes the data directory usable: runs initdb once (as the unprivileged user when root), and removes a
    /// <c>postmaster.pid</c> left by a killed server so a second start reuses the data.
    /// </summary>
    public async Task PrepareAsync(CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(DataDirectory);
        if (Binaries.RunAsUser is { } user)
        {
            await GrantAsync(user, cancellationToken);
        }

        RemoveStalePidFile();
        if (!File.Exists(Path.Combine(DataDirectory, "PG_VERSION")))
        {
            await InitDbAsync(cancellationToken);
        }
        else if (PostgresHba.TrustsAnyone(await File.ReadAllTextAsync(HbaFile, cancellationToken)))
        {
            await RequirePasswordsAsync(cancellationToken);
        }
        else if (!File.Exists(PasswordFile))
        {
            throw new InvalidOperationException(
                $"{DataDirectory} asks for a password but {PasswordFile} is gone. Restore that file from a backup, or move the data directory away to start afresh.");
        }
    }

    private string HbaFile => Path.Combine(DataDirectory, "pg_hba.conf");

    private async Task InitDbAsync(CancellationToken cancellationToken)
    {
        // initdb reads the password from a file; the service user (when root) must read it, and no one else.
        var pwDirectory = Directory.CreateTempSubdirectory("sentryvibe-initdb-");
        var pwFile = Path.Combine(pwDirectory.FullName, "pw");
        try
        {
            PrivateFiles.Write(pwFile, Password + "\n");
            if (Binaries.RunAsUser is { } user)
            {
                await Cli.Wrap("chown").WithArguments(["-R", $"{user}:", pwDirectory.FullName]).ExecuteAsync(cancellationToken);
            }
            var (file, args) = Binaries.AsServiceUser(Binaries.InitDb,
                ["-D", DataDirectory, "-U", SuperUser, "--auth=scram-sha-256", $"--pwfile={pwFile}", "--encoding=UTF8", "--no-instructions"]);
            var result = await Cli.Wrap(file).WithArguments(args)
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(cancellationToken);
            if (!result.IsSuccess)
            {
                throw new InvalidOperationException($"initdb failed for {DataDirectory}: {result.StandardError.Trim()}");
            }
        }
        finally
        {
            pwDirectory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Upgrades a cluster made by an earlier version with <c>--auth=trust</c>: starts it as it is (on a free loopback
    /// port, still trusting), gives the superuser the password, stops it, and only then rewrites pg_hba.conf to
    /// scram-sha-256. Interrupted anywhere, the next start finds it still trusting and does it again: nothing is lost.
    /// </summary>
    private async Task RequirePasswordsAsync(CancellationToken cancellationToken)
    {
        var port = FreePort();
        await StartServerAsync(port, TimeSpan.FromSeconds(60), cancellationToken);
        try
        {
            var trusting = new Npgsql.NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1", Port = port, Username = SuperUser, Database = "postgres", Pooling = false,
            }.ConnectionString;
            await using var conn = new Npgsql.NpgsqlConnection(trusting);
            await conn.OpenAsync(cancellationToken);
            // ALTER ROLE takes no parameters; the literal is quoted as SQL quotes it. The password is ours (url-safe base64).
            await using var cmd = new Npgsql.NpgsqlCommand(
                $"SET password_encryption = 'scram-sha-256'; ALTER ROLE \"{SuperUser}\" PASSWORD '{Password.Replace("'", "''")}'", conn);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            await StopAsync();
        }
        // Rewritten in place so the file keeps its owner (the service user when root) and mode.
        var hba = await File.ReadAllTextAsync(HbaFile, cancellationToken);
        await File.WriteAllTextAsync(HbaFile, PostgresHba.RequirePasswords(hba), cancellationToken);
    }

    /// <summary>Arguments of the server process for a given port: loopback TCP only, no Unix socket to clash on.</summary>
    public IReadOnlyList<string> ServerArguments(int port) =>
    [
        "-D", DataDirectory,
        "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "fsync=on",
    ];

    /// <summary>Starts the server on a free port (tests; the AppHost runs it as an Aspire executable resource instead).</summary>
    public async Task StartAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await PrepareAsync(cancellationToken);
        Port = FreePort();
        await StartServerAsync(Port, timeout ?? TimeSpan.FromSeconds(30), cancellationToken);
    }

    private async Task StartServerAsync(int port, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var (file, args) = Binaries.AsServiceUser(Binaries.Postgres, ServerArguments(port));
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var log = new StringBuilder();
        _server = Process.Start(psi) ?? throw new InvalidOperationException("Could not start postgres.");
        _server.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        _server.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        _server.BeginErrorReadLine();
        _server.BeginOutputReadLine();

        try
        {
            await WaitUntilAcceptingAsync(port, timeout, () => _server.HasExited, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            string text;
            lock (log) text = log.ToString();
            await StopAsync();
            throw new InvalidOperationException($"postgres did not start on port {port}: {e.Message}\n{text}", e);
        }
    }

    /// <summary>Waits until the server answers a real startup handshake on the port.</summary>
    public static async Task WaitUntilAcceptingAsync(int port, TimeSpan timeout, Func<bool>? exited = null, CancellationToken cancellationToken = default)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (exited?.Invoke() == true) throw new InvalidOperationException("the server process exited");
            if (await AnswersAsync(port, cancellationToken)) return;
            if (deadline.Elapsed > timeout) throw new TimeoutException($"no answer within {timeout.TotalSeconds:0} s");
            await Task.Delay(100, cancellationToken);
        }
    }

    // A real startup handshake, as pg_isready does: a server still starting or recovering after a crash accepts the
    // connection but answers the startup packet with an error (57P03), and only a ready one asks to authenticate ('R').
    private static async Task<bool> AnswersAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync(StartupPacket(SuperUser, "postgres"), cancellationToken);
            var buffer = new byte[1];
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(2));
            var read = await stream.ReadAsync(buffer, cts.Token);
            var ready = read == 1 && buffer[0] == (byte)'R';
            if (ready)
            {
                // Terminate politely so the server does not log an unexpected EOF for every probe.
                await stream.WriteAsync(new byte[] { (byte)'X', 0, 0, 0, 4 }, cancellationToken);
            }
            return ready;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static byte[] StartupPacket(string user, string database)
    {
        var body = new List<byte> { 0, 3, 0, 0 }; // protocol 3.0
        foreach (var part in new[] { "user", user, "database", database })
        {
            body.AddRange(Encoding.UTF8.GetBytes(part));
            body.Add(0);
        }
        body.Add(0);
        var length = body.Count + 4;
        return [(byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length, .. body];
    }

    /// <summary>Fast shutdown (SIGINT), then a kill if it lingers.</summary>
    public async Task StopAsync()
    {
        if (_server is null) return;
        var server = _server;
        _server = null;
        try
        {
            if (!server.HasExited)
            {
                // SIGINT is PostgreSQL's "fast" shutdown.
                await Cli.Wrap("kill").WithArguments(["-INT", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
                    .WithValidation(CommandResultValidation.None).ExecuteAsync();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                try { await server.WaitForExitAsync(cts.Token); }
                catch (OperationCanceledException) { server.Kill(entireProcessTree: true); }
            }
        }
        finally
        {
            server.Dispose();
        }
    }

    /// <summary>Kills the server without a shutdown, as a crash would (fault tests).</summary>
    public void Kill()
    {
        if (_server is { HasExited: false } server)
        {
            server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    /// <summary>A killed server leaves postmaster.pid behind; the next start refuses while it names a live process.</summary>
    public void RemoveStalePidFile()
    {
        var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile)) return;
        var firstLine = File.ReadLines(pidFile).FirstOrDefault();
        if (int.TryParse(firstLine, out var pid) && IsPostgresProcess(pid)) return;
        File.Delete(pidFile);
    }

    private static bool IsPostgresProcess(int pid)
    {
        try
        {
            // /proc/<pid>/stat: "pid (comm) state ..."; a zombie (Z) is dead even though its pid still answers.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            var comm = stat[(stat.IndexOf('(') + 1)..close];
            var state = stat[(close + 2)..].FirstOrDefault();
            return comm.StartsWith("postgres", StringComparison.Ordinal) && state is not 'Z' and not 'X';
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return true; }
    }

    private async Task GrantAsync(string user, CancellationToken cancellationToken)
    {
        // The service user owns the data directory and needs to traverse (not read) every folder above it.
        await Cli.Wrap("chown").WithArguments(["-R", $"{user}:", DataDirectory]).ExecuteAsync(cancellationToken);
        await Cli.Wrap("chmod").WithArguments(["700", DataDirectory]).ExecuteAsync(cancellationToken);
        for (var dir = Directory.GetParent(DataDirectory); dir is not null; dir = dir.Parent)
        {
            if (OperatingSystem.IsWindows()) break;
            var mode = File.GetUnixFileMode(dir.FullName);
            if (!mode.HasFlag(UnixFileMode.OtherExecute))
            {
                File.SetUnixFileMode(dir.FullName, mode | UnixFileMode.OtherExecute);
            }
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
