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
        var key = $"ConnectionStrings:{ConnectionName}";
        if (string.IsNullOrWhiteSpace(builder.Configuration[key])
            && builder.Configuration["DATABASE_URL"] is { Length: > 0 } url)
        {
            builder.Configuration[key] = DatabaseUrl.ToConnectionString(url);
        }

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
