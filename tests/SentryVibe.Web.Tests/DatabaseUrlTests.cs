using System.Net;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class DatabaseUrlTests
{
    [Fact]
    public void A_postgres_uri_becomes_an_npgsql_connection_string()
    {
        var cs = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("postgresql://app%40x:p%3Ass@db.internal:6543/rail%20way?sslmode=require"));
        Assert.Equal("db.internal", cs.Host);
        Assert.Equal(6543, cs.Port);
        Assert.Equal("rail way", cs.Database);
        Assert.Equal("app@x", cs.Username);
        Assert.Equal("p:ss", cs.Password);
        Assert.Equal(SslMode.Require, cs.SslMode);
    }

    [Fact]
    public void A_uri_without_port_or_database_gets_the_defaults()
    {
        var cs = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString("postgres://u@h"));
        Assert.Equal(5432, cs.Port);
        Assert.Equal("postgres", cs.Database);
    }

    [Fact]
    public void A_key_value_connection_string_passes_through()
    {
        const string cs = "Host=localhost;Port=5432;Database=x;Username=y";
        Assert.Equal(cs, DatabaseUrl.ToConnectionString(cs));
    }
}

[Collection(PostgresCollection.Name)]
public sealed class DatabaseUrlStartupTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Web_starts_and_migrates_from_DATABASE_URL_alone()
    {
        var cs = new NpgsqlConnectionStringBuilder(await postgres.CreateDatabaseAsync());
        var url = $"postgres://{Uri.EscapeDataString(cs.Username!)}:{Uri.EscapeDataString(cs.Password!)}@{cs.Host}:{cs.Port}/{cs.Database}";
        await using var app = new SentryVibeWebFactory(new Dictionary<string, string?> { ["DATABASE_URL"] = url });
        using var client = app.CreateClient();
        using var health = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        await using var conn = new NpgsqlConnection(cs.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM \"__EFMigrationsHistory\"", conn);
        Assert.True((long)(await cmd.ExecuteScalarAsync())! >= 2);
    }
}
