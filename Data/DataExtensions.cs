using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace SentryVibe.Data;

public static class DataExtensions
{
    public const string ConnectionName = "sentryvibe";

    /// <summary>
    /// Registers <see cref="SentryVibeDb"/> the Aspire way (pooling, health check, traces, metrics) and an
    /// <see cref="NpgsqlDataSource"/> for LISTEN/NOTIFY and bulk paths. Honours Railway's <c>DATABASE_URL</c>.
    /// </summary>
    public static IHostApplicationBuilder AddSentryVibeDb(this IHostApplicationBuilder builder)
    {
        var key = UseDatabaseUrl(builder.Configuration);
        builder.AddNpgsqlDbContext<SentryVibeDb>(ConnectionName, configureDbContextOptions: options =>
            options.ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning)));
        builder.Services.AddSingleton(sp =>
        {
            var connectionString = sp.GetRequiredService<IConfiguration>()[key]
                ?? throw new InvalidOperationException($"No connection string '{ConnectionName}' (set ConnectionStrings__{ConnectionName} or DATABASE_URL).");
            return new NpgsqlDataSourceBuilder(connectionString).Build();
        });
        return builder;
    }

    /// <summary>
    /// Registers only an <see cref="NpgsqlDataSource"/>, the Aspire way (health check, traces, metrics): for the broker,
    /// whose every statement is its own SQL, so it never loads EF Core and its model (docs/architecture.md, decision 3).
    /// Honours Railway's <c>DATABASE_URL</c>.
    /// </summary>
    public static IHostApplicationBuilder AddSentryVibeDataSource(this IHostApplicationBuilder builder)
    {
        UseDatabaseUrl(builder.Configuration);
        builder.AddNpgsqlDataSource(ConnectionName);
        return builder;
    }

    /// <summary>The connection string's configuration key, filled from <c>DATABASE_URL</c> when only that is set.</summary>
    private static string UseDatabaseUrl(IConfigurationManager configuration)
    {
        var key = $"ConnectionStrings:{ConnectionName}";
        if (string.IsNullOrWhiteSpace(configuration[key]) && configuration["DATABASE_URL"] is { Length: > 0 } url)
        {
            configuration[key] = DatabaseUrl.ToConnectionString(url);
        }
        return key;
    }
}

/// <summary>Turns a <c>postgres://user:pass@host:port/db?sslmode=require</c> URI (Railway, Heroku) into an Npgsql connection string.</summary>
public static class DatabaseUrl
{
    public static string ToConnectionString(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgres" or "postgresql"))
        {
            // Already a key=value connection string.
            return url;
        }

        var userInfo = uri.UserInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } db ? db : "postgres",
            Username = Uri.UnescapeDataString(userInfo[0]),
        };
        if (userInfo.Length > 1) builder.Password = Uri.UnescapeDataString(userInfo[1]);

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(kv[0]);
            var value = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
            if (name.Equals("sslmode", StringComparison.OrdinalIgnoreCase) && Enum.TryParse<SslMode>(value.Replace("-", ""), ignoreCase: true, out var mode))
            {
                builder.SslMode = mode;
            }
        }
        return builder.ConnectionString;
    }
}
