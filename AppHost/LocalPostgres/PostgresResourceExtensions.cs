// docs/architecture.md, decision 2: Postgres from a container when a runtime answers (or when publishing), else from the
// machine's server binaries; with neither, one line on what to install.
using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using CliWrap;
using CliWrap.Buffered;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace SentryVibe.LocalPostgres;

public static class PostgresResourceExtensions
{
    public const string DatabaseName = "sentryvibe";

    /// <summary>
    /// Adds the <c>sentryvibe</c> database. <c>SentryVibe:Postgres</c> = <c>auto</c> (default) | <c>container</c> |
    /// <c>local</c> chooses; an external <c>ConnectionStrings:sentryvibe</c> wins over both.
    /// </summary>
    public static IResourceBuilder<IResourceWithConnectionString> AddSentryVibePostgres(this IDistributedApplicationBuilder builder, string dataDirectory)
    {
        if (!builder.ExecutionContext.IsPublishMode && builder.Configuration.GetConnectionString(DatabaseName) is { Length: > 0 })
        {
            return builder.AddConnectionString(DatabaseName);
        }

        var mode = builder.Configuration["SentryVibe:Postgres"]?.ToLowerInvariant() ?? "auto";
        if (builder.ExecutionContext.IsPublishMode || mode == "container" || (mode == "auto" && ContainerRuntime.IsAvailable(builder.Configuration)))
        {
            return builder.AddPostgres("postgres").WithDataVolume().AddDatabase(DatabaseName);
        }

        var binaries = PostgresBinaries.Find();
        if (binaries is null)
        {
            Console.Error.WriteLine(PostgresBinaries.InstallHint);
            Environment.Exit(3);
        }
        return builder.AddLocalPostgres("postgres", binaries, dataDirectory).AddDatabase(DatabaseName);
    }

    /// <summary>
    /// A PostgreSQL server from <paramref name="binaries"/> on a free loopback port, its cluster in <paramref name="dataDirectory"/>
    /// (initdb on first start, stale postmaster.pid removed before every start), its superuser's password in
    /// <c>postgres-password</c> beside it (mode 600; a cluster of an earlier version that trusted every local user is
    /// switched to scram-sha-256 before it starts).
    /// </summary>
    public static IResourceBuilder<LocalPostgresServerResource> AddLocalPostgres(
        this IDistributedApplicationBuilder builder, string name, PostgresBinaries binaries, string dataDirectory)
    {
        var cluster = new PostgresCluster(binaries, dataDirectory);
        var port = builder.Configuration[$"SentryVibe:PostgresPort"] is { Length: > 0 } p
            ? int.Parse(p, CultureInfo.InvariantCulture)
            : PostgresCluster.FreePort();
        var (command, arguments) = binaries.AsServiceUser(binaries.Postgres, cluster.ServerArguments(port));
        // The password file is made now (not at start): the connection string Web and Broker get must carry it.
        var password = builder.AddParameter($"{name}-password", cluster.Password, publishValueAsDefault: false, secret: true);
        var server = new LocalPostgresServerResource(name, command, cluster.DataDirectory, cluster, password.Resource);

        var healthCheckKey = $"{name}_accepts_connections";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthCheckKey, async ct =>
        {
            try
            {
                await PostgresCluster.WaitUntilAcceptingAsync(port, TimeSpan.Zero, cancellationToken: ct);
                return HealthCheckResult.Healthy();
            }
            catch (TimeoutException)
            {
                return HealthCheckResult.Unhealthy($"postgres is not accepting connections on port {port} yet");
            }
        });

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(server, async (e, ct) =>
        {
            var logger = e.Services.GetRequiredService<ResourceLoggerService>().GetLogger(server);
            logger.LogInformation("Preparing {DataDirectory} with {BinDirectory} (as {User})",
                cluster.DataDirectory, binaries.BinDirectory, binaries.RunAsUser ?? Environment.UserName);
            await cluster.PrepareAsync(ct);
        });

        return builder.AddResource(server)
            .WithArgs([.. arguments])
            .WithEndpoint(LocalPostgresServerResource.EndpointName, e =>
            {
                e.Port = port;
                e.TargetPort = port;
                e.IsProxied = false;
                e.UriScheme = "tcp";
                e.Protocol = System.Net.Sockets.ProtocolType.Tcp;
            })
            .WithHealthCheck(healthCheckKey);
    }

    /// <summary>A database of the local server; its health check creates it if missing, so WaitFor means "usable".</summary>
    public static IResourceBuilder<LocalPostgresDatabaseResource> AddDatabase(this IResourceBuilder<LocalPostgresServerResource> server, string name)
    {
        var database = new LocalPostgresDatabaseResource(name, name, server.Resource);
        var healthCheckKey = $"{server.Resource.Name}_{name}_exists";
        string? connectionString = null;
        server.ApplicationBuilder.Services.AddHealthChecks().AddAsyncCheck(healthCheckKey, async ct =>
        {
            try
            {
                connectionString ??= await server.Resource.ConnectionStringExpression.GetValueAsync(ct);
                await using var conn = new NpgsqlConnection(connectionString + ";Database=postgres;Timeout=3;Pooling=false");
                await conn.OpenAsync(ct);
                await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @name", conn);
                exists.Parameters.AddWithValue("name", database.DatabaseName);
                if (await exists.ExecuteScalarAsync(ct) is null)
                {
                    // CREATE DATABASE cannot take parameters; the name is ours, quote it as an identifier.
                    await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database.DatabaseName.Replace("\"", "\"\"")}\"", conn);
                    await create.ExecuteNonQueryAsync(ct);
                }
                return HealthCheckResult.Healthy();
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                return HealthCheckResult.Unhealthy($"database {database.DatabaseName} is not usable yet: {e.Message}");
            }
        });

        // Aspire moves a container's children along with it, not an executable's: mirror the server's state onto the
        // database so the dashboard shows it and WaitFor(db) sees "Running" and then runs the health check above.
        server.ApplicationBuilder.Eventing.Subscribe<BeforeStartEvent>((e, ct) =>
        {
            var notifications = e.Services.GetRequiredService<ResourceNotificationService>();
            var stopping = e.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            _ = MirrorStateAsync(notifications, server.Resource, database, stopping);
            return Task.CompletedTask;
        });

        return server.ApplicationBuilder.AddResource(database)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "PostgresDatabase",
                State = KnownResourceStates.NotStarted,
                Properties = [new("postgres.database", database.DatabaseName)],
            })
            .WithHealthCheck(healthCheckKey);
    }

    private static async Task MirrorStateAsync(ResourceNotificationService notifications, IResource server, IResource database, CancellationToken stopping)
    {
        try
        {
            await foreach (var change in notifications.WatchAsync(stopping))
            {
                if (change.Resource != server) continue;
                await notifications.PublishUpdateAsync(database, s => s with
                {
                    State = change.Snapshot.State,
                    StartTimeStamp = change.Snapshot.StartTimeStamp,
                    StopTimeStamp = change.Snapshot.StopTimeStamp,
                    ExitCode = change.Snapshot.ExitCode,
                });
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>Whether Docker or Podman is installed and its daemon answers.</summary>
public static class ContainerRuntime
{
    public static bool IsAvailable(IConfiguration configuration)
    {
        var preferred = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"];
        string[] candidates = preferred is { Length: > 0 } ? [preferred] : ["docker", "podman"];
        return candidates.Any(Answers);
    }

    private static bool Answers(string runtime)
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, runtime)));
        if (!onPath) return false;

        // `info` talks to the daemon: an installed CLI without a running daemon cannot start containers.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var result = Cli.Wrap(runtime).WithArguments(["info", "--format", "{{.ServerVersion}}"])
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(timeout.Token).GetAwaiter().GetResult();
            return result.IsSuccess && result.StandardOutput.Trim().Length > 0;
        }
        catch (Exception e) when (e is OperationCanceledException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return false;
        }
    }
}
