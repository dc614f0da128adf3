// Publishes $SENTRYVIBE_HOME/apphost.json once web, broker and runner are healthy (the public contract the UI,
// the VS Code extension and outside checks read), prints the login URL, and withdraws the file at shutdown.
using System.Text.Json;
using System.Text.Json.Serialization;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SentryVibe.AppHost.Contract;

public sealed record AppHostContract(
    [property: JsonPropertyName("webUrl")] string WebUrl,
    [property: JsonPropertyName("brokerUrl")] string BrokerUrl,
    [property: JsonPropertyName("apiToken")] string ApiToken,
    [property: JsonPropertyName("previewDomain")] string PreviewDomain,
    [property: JsonPropertyName("loginUrl")] string LoginUrl,
    [property: JsonPropertyName("postgresPort")] int? PostgresPort,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt);

public static class ContractFileExtensions
{
    /// <summary>Writes apphost.json when every one of <paramref name="resources"/> is healthy.</summary>
    public static IDistributedApplicationBuilder AddContractFile(this IDistributedApplicationBuilder builder, SentryVibeHome home,
        IResourceBuilder<IResourceWithConnectionString> db, IResourceBuilder<IResourceWithEndpoints> web, IResourceBuilder<IResourceWithEndpoints> broker,
        params IResourceBuilder<IResource>[] resources)
    {
        if (builder.ExecutionContext.IsPublishMode) return builder;
        builder.Services.AddHostedService(sp => new ContractFileWriter(
            home, db.Resource, web.Resource, broker.Resource, [web.Resource, broker.Resource, .. resources.Select(r => r.Resource)],
            sp.GetRequiredService<ResourceNotificationService>(), sp.GetRequiredService<ILogger<ContractFileWriter>>()));
        return builder;
    }
}

public sealed class ContractFileWriter(
    SentryVibeHome home, IResourceWithConnectionString db, IResourceWithEndpoints web, IResourceWithEndpoints broker, IReadOnlyList<IResource> resources,
    ResourceNotificationService notifications, ILogger<ContractFileWriter> logger) : BackgroundService
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private volatile bool _written;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.WhenAll(resources.Select(r => notifications.WaitForResourceHealthyAsync(r.Name, stoppingToken)));
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var webUrl = web.GetEndpoint("http").Url;
        var brokerUrl = broker.GetEndpoint("http").Url;
        var loginUrl = $"{webUrl}/login?t={Uri.EscapeDataString(home.ApiToken)}";
        var contract = new AppHostContract(webUrl, brokerUrl, home.ApiToken, home.PreviewDomain, loginUrl,
            await PostgresPortAsync(stoppingToken), Environment.ProcessId, DateTimeOffset.UtcNow);
        PrivateFiles.Write(home.ContractFile, JsonSerializer.Serialize(contract, Json) + "\n");
        _written = true;

        // The one line a user needs, on the terminal only: the link carries the API token, and logs travel on (the
        // dashboard, OpenTelemetry, Sentry), so the logger gets the address without it.
        Console.WriteLine();
        Console.WriteLine("  ==> SentryVibe is ready. Open: " + loginUrl);
        Console.WriteLine("      (contract: " + home.ContractFile + ")");
        Console.WriteLine();
        logger.LogInformation("SentryVibe is ready at {WebUrl} (login link printed to the console and written to {ContractFile})", webUrl, home.ContractFile);
    }

    /// <summary>The database port for pg_dump and friends (docs/operations.md); null when it cannot be told.</summary>
    private async Task<int?> PostgresPortAsync(CancellationToken cancellationToken)
    {
        try
        {
            var connectionString = await db.GetConnectionStringAsync(cancellationToken);
            return connectionString is null ? null : new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Port;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (!_written) return;
        try
        {
            // Only withdraw our own file: a later AppHost on the same home may have replaced it.
            var current = JsonSerializer.Deserialize<AppHostContract>(await File.ReadAllTextAsync(home.ContractFile, cancellationToken));
            if (current?.Pid == Environment.ProcessId) File.Delete(home.ContractFile);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Already gone (a second stop, or the home was removed): nothing to withdraw.
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Could not remove {ContractFile}", home.ContractFile);
        }
    }
}
