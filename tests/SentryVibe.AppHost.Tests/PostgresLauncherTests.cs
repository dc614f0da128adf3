using Npgsql;
using SentryVibe.LocalPostgres;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests;

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
