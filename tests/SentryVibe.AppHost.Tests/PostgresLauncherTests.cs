using System.Diagnostics;
using CliWrap;
using CliWrap.Buffered;
using Npgsql;
using SentryVibe.AppHost.Contract;
using SentryVibe.LocalPostgres;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PostgresLauncherTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sentryvibe-launcher-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Second_start_reuses_the_data_of_the_first()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        var data = Path.Combine(_root, "data");

        await using (var first = new PostgresCluster(binaries, data))
        {
            await first.StartAsync();
            await ExecuteAsync(first, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
        }

        await using var second = new PostgresCluster(binaries, data);
        await second.StartAsync();
        Assert.Equal("still here", await ScalarAsync(second, "SELECT v FROM kept"));
    }

    [Fact]
    public async Task A_killed_server_leaves_a_stale_pid_file_that_does_not_stop_the_next_start()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        var data = Path.Combine(_root, "data");

        var killed = new PostgresCluster(binaries, data);
        await killed.StartAsync();
        await ExecuteAsync(killed, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
        killed.Kill();
        Assert.True(File.Exists(Path.Combine(data, "postmaster.pid")), "a killed server should leave postmaster.pid behind");

        await using var next = new PostgresCluster(binaries, data);
        await next.StartAsync();
        Assert.Equal(42, await ScalarAsync(next, "SELECT v FROM kept"));
    }

    [Fact]
    public void Binaries_are_found_and_run_as_an_unprivileged_user_when_root()
    {
        var binaries = PostgresBinaries.Find();
        Assert.NotNull(binaries);
        Assert.True(File.Exists(binaries.InitDb));
        if (PostgresBinaries.IsRoot)
        {
            Assert.False(string.IsNullOrEmpty(binaries.RunAsUser));
            Assert.NotEqual("root", binaries.RunAsUser);
        }
    }

    [Fact]
    public async Task Connecting_without_the_password_or_with_a_wrong_one_is_refused_and_with_it_works()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        await using var cluster = new PostgresCluster(binaries, Path.Combine(_root, "data"));
        await cluster.StartAsync();

        var without = await Assert.ThrowsAsync<NpgsqlException>(() => OpenAsync(cluster.Port, password: null));
        Assert.Contains("password", without.Message, StringComparison.OrdinalIgnoreCase);
        var wrong = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(cluster.Port, password: "not-the-password"));
        Assert.Equal("28P01", wrong.SqlState); // invalid_password
        Assert.Equal(1, await ScalarAsync(cluster, "SELECT 1"));
        Assert.Contains(cluster.Password, cluster.ConnectionStringFor("postgres"));
    }

    [Fact]
    public async Task The_password_file_is_readable_by_its_owner_only_whatever_the_umask()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        var home = Path.Combine(_root, "home");
        await using var cluster = new PostgresCluster(binaries, Path.Combine(home, "postgres"));
        await cluster.StartAsync();

        Assert.Equal(Path.Combine(home, PostgresCluster.PasswordFileName), cluster.PasswordFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cluster.PasswordFile));
        Assert.Equal(cluster.Password, File.ReadAllText(cluster.PasswordFile).Trim());
        Assert.True(cluster.Password.Length >= 32);
        // A file made in a folder that does not exist yet gets a private folder too.
        var nested = Path.Combine(_root, "fresh", "postgres-password");
        PrivateFiles.Secret(nested, minimumLength: 16);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(nested)!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(nested));
    }

    [Fact]
    public async Task A_cluster_an_earlier_version_made_with_trust_auth_is_switched_to_passwords_and_keeps_its_data()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        var data = Path.Combine(_root, "postgres");
        await MakeTrustingClusterAsync(binaries, data, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from before')");

        await using var upgraded = new PostgresCluster(binaries, data);
        await upgraded.StartAsync();

        Assert.Equal("from before", await ScalarAsync(upgraded, "SELECT v FROM kept"));
        await Assert.ThrowsAsync<NpgsqlException>(() => OpenAsync(upgraded.Port, password: null));
        Assert.False(PostgresHba.TrustsAnyone(File.ReadAllText(Path.Combine(data, "pg_hba.conf"))));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(upgraded.PasswordFile));
    }

    /// <summary>What earlier versions did: initdb --auth=trust, then a server anyone on the machine could use.</summary>
    internal static async Task MakeTrustingClusterAsync(PostgresBinaries binaries, string data, string sql)
    {
        Directory.CreateDirectory(data);
        if (binaries.RunAsUser is { } user)
        {
            await Cli.Wrap("chown").WithArguments(["-R", $"{user}:", data]).ExecuteAsync();
            await Cli.Wrap("chmod").WithArguments(["o+x", Path.GetDirectoryName(data)!]).ExecuteAsync();
        }
        var (initdb, initArgs) = binaries.AsServiceUser(binaries.InitDb, ["-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-instructions"]);
        await Cli.Wrap(initdb).WithArguments(initArgs).ExecuteBufferedAsync();
        Assert.True(PostgresHba.TrustsAnyone(File.ReadAllText(Path.Combine(data, "pg_hba.conf"))));

        var port = PostgresCluster.FreePort();
        var (file, args) = binaries.AsServiceUser(binaries.Postgres, new PostgresCluster(binaries, data).ServerArguments(port));
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var server = Process.Start(psi)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            await PostgresCluster.WaitUntilAcceptingAsync(port, TimeSpan.FromSeconds(30), () => server.HasExited);
            await using var conn = await OpenAsync(port, password: null); // trust: no password asked
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync();
        }
        finally
        {
            await Cli.Wrap("kill").WithArguments(["-INT", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
                .WithValidation(CommandResultValidation.None).ExecuteAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await server.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { server.Kill(entireProcessTree: true); }
        }
    }

    internal static async Task<NpgsqlConnection> OpenAsync(int port, string? password)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = port, Username = "postgres", Password = password, Database = "postgres", Pooling = false,
        }.ConnectionString);
        try
        {
            await conn.OpenAsync();
            return conn;
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    private static async Task ExecuteAsync(PostgresCluster cluster, string sql)
    {
        await using var conn = new NpgsqlConnection(cluster.ConnectionStringFor("postgres"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(PostgresCluster cluster, string sql)
    {
        await using var conn = new NpgsqlConnection(cluster.ConnectionStringFor("postgres"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
