// Starts the real AppHost (Postgres from the machine's binaries, Web, Broker, a local Runner) with its own
// SENTRYVIBE_HOME and random ports, and hands out what its public contract promises: apphost.json.
extern alias AppHostAssembly;

using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

public sealed record Contract(string WebUrl, string BrokerUrl, string ApiToken, string PreviewDomain);

public sealed class RunningApp : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(4);
    public static readonly string[] Services = ["web", "broker", "runner"];

    private RunningApp(DistributedApplication app, string home, Contract contract)
    {
        App = app;
        Home = home;
        Contract = contract;
    }

    public DistributedApplication App { get; }
    public string Home { get; }
    public string ContractFile => ContractPath(Home);
    public Contract Contract { get; }

    public static string ContractPath(string home) => Path.Combine(home, "apphost.json");

    public static string NewHome() => Path.Combine(Path.GetTempPath(), "sentryvibe-apphost-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>
    /// Starts everything and returns once every service is healthy and apphost.json is written. <paramref name="configure"/>
    /// may adjust the resources first (e.g. point the runner's agent at a scripted model).
    /// </summary>
    public static async Task<RunningApp> StartAsync(string home, Action<IDistributedApplicationTestingBuilder>? configure = null, string? sentryDsn = null)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        string[] args =
        [
            $"--SENTRYVIBE_HOME={home}",
            "--SentryVibe:Postgres=local",
            "--SentryVibe:WebPort=0",
            "--SentryVibe:BrokerPort=0",
            $"--SentryVibe:WorkspaceRoot={Path.Combine(home, "workspace")}",
        ];
        if (sentryDsn is not null) args = [.. args, $"--SENTRY_DSN={sentryDsn}"];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<AppHostAssembly::Projects.SentryVibe_AppHost>(args, timeout.Token);
        configure?.Invoke(builder);

        var app = await builder.BuildAsync(timeout.Token);
        try
        {
            await app.StartAsync(timeout.Token);
            var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
            foreach (var service in Services)
            {
                try
                {
                    await notifications.WaitForResourceHealthyAsync(service, timeout.Token);
                }
                catch (OperationCanceledException e)
                {
                    throw new TimeoutException($"'{service}' was not healthy within {StartTimeout.TotalMinutes} min.", e);
                }
            }

            var contract = await Eventually.WaitAsync(() => ReadContractAsync(home), TimeSpan.FromSeconds(30), "apphost.json to be written");
            return new RunningApp(app, home, contract);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    public static async Task<Contract?> ReadContractAsync(string home)
    {
        var path = ContractPath(home);
        if (!File.Exists(path)) return null;
        return JsonSerializer.Deserialize<Contract>(await File.ReadAllTextAsync(path), new JsonSerializerOptions(JsonSerializerDefaults.Web));
    }

    public HttpClient CreateApiClient(bool authenticated = true)
    {
        var client = new HttpClient { BaseAddress = new Uri(Contract.WebUrl), Timeout = TimeSpan.FromSeconds(30) };
        if (authenticated) client.DefaultRequestHeaders.Authorization = new("Bearer", Contract.ApiToken);
        return client;
    }

    /// <summary>Stops the app the way Ctrl+C does (hosted services see StopAsync), then releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            await App.StopAsync(timeout.Token);
        }
        finally
        {
            await App.DisposeAsync();
        }
    }

    public static void DeleteHome(string home)
    {
        try { Directory.Delete(home, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// One running app shared by the whole-app test classes: starting it costs tens of seconds. It reports to a Sentry
/// ingest stand-in, as a deployment with SENTRY_DSN would.
/// </summary>
public sealed class RunningAppFixture : IAsyncLifetime
{
    private readonly string _home = RunningApp.NewHome();

    public RunningApp App { get; private set; } = null!;

    public SentryIngest Sentry { get; } = new();

    public async Task InitializeAsync() => App = await RunningApp.StartAsync(_home, sentryDsn: Sentry.Dsn);

    public async Task DisposeAsync()
    {
        try
        {
            if (App is not null) await App.DisposeAsync();
        }
        finally
        {
            RunningApp.DeleteHome(_home);
            await Sentry.DisposeAsync();
        }
    }
}

/// <summary>Whole-app tests run one at a time: each starts Postgres, three services and DCP on a 2-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WholeAppCollection : ICollectionFixture<RunningAppFixture>
{
    public const string Name = "whole app";
}
