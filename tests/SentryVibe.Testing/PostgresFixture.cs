using Npgsql;
using SentryVibe.LocalPostgres;
using Xunit;

namespace SentryVibe.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster per test collection, started from the machine's binaries with the AppHost's
/// launcher. Each test class asks for its own database.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sentryvibe-pg-" + Guid.NewGuid().ToString("N")[..8]);

    public PostgresCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        Cluster = new PostgresCluster(binaries, Path.Combine(_root, "data"));
        await Cluster.StartAsync();
    }

    /// <summary>Creates a fresh database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null)
    {
        name ??= "t_" + Guid.NewGuid().ToString("N")[..12];
        await using var conn = new NpgsqlConnection(Cluster.ConnectionStringFor("postgres"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
        await cmd.ExecuteNonQueryAsync();
        return Cluster.ConnectionStringFor(name);
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
