// One Web app (WebApplicationFactory) and one database per test class, on the collection's Postgres cluster.
using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}

public sealed class SentryVibeWebFactory(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<Program>
{
    public const string ApiToken = "test-api-token-7f3c9a1e5b2d4c6f";

    public CapturedLogs Logs { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("SentryVibe:ApiToken", ApiToken);
        builder.UseSetting("SentryVibe:SseKeepAlive", "00:00:02");
        // Expiry is driven by the tests, not the clock.
        builder.UseSetting("SentryVibe:ExpiryScanInterval", "01:00:00");
        foreach (var (key, value) in settings) builder.UseSetting(key, value);
        builder.ConfigureLogging(logging => logging.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
    }
}

/// <summary>Class fixture: started by the first test of the class (it needs the collection's cluster first).</summary>
public sealed class WebAppFixture : IAsyncLifetime
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public SentryVibeWebFactory App { get; private set; } = null!;
    public string ConnectionString { get; private set; } = null!;

    public async Task EnsureStartedAsync(PostgresFixture postgres)
    {
        await _gate.WaitAsync();
        try
        {
            if (ConnectionString is not null) return;
            ConnectionString = await postgres.CreateDatabaseAsync();
            App = new SentryVibeWebFactory(new Dictionary<string, string?> { ["ConnectionStrings:sentryvibe"] = ConnectionString });
            _ = App.Server; // starts the host: migrations run here
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (App is not null) await App.DisposeAsync();
    }
}

[Collection(PostgresCollection.Name)]
public abstract class WebTest(PostgresFixture postgres, WebAppFixture fixture) : IClassFixture<WebAppFixture>, IAsyncLifetime
{
    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    protected SentryVibeWebFactory App => fixture.App;
    protected string ConnectionString => fixture.ConnectionString;
    protected PostgresFixture Postgres => postgres;

    public Task InitializeAsync() => fixture.EnsureStartedAsync(postgres);

    public Task DisposeAsync() => Task.CompletedTask;

    protected HttpClient Api()
    {
        var client = App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", SentryVibeWebFactory.ApiToken);
        return client;
    }

    protected HttpClient Anonymous() => App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    protected SentryVibeDb Db() => new(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(ConnectionString).Options);

    protected async Task<long> CountAsync(string table)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table}", conn);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    protected async Task<(long Projects, long Commands, long Events)> CountRowsAsync() =>
        (await CountAsync("projects"), await CountAsync("commands"), await CountAsync("events"));

    protected static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    protected async Task<JsonElement> CreateProjectAsync(object body)
    {
        using var client = Api();
        var response = await client.PostAsJsonAsync("/api/projects", body);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return await JsonAsync(response);
    }

    /// <summary>The owner's user id: whom the API token (<see cref="Api"/>) stands for.</summary>
    protected Guid OwnerId => App.Services.GetRequiredService<SentryVibe.Web.Accounts.OwnerAccount>().Id;

    /// <summary>Registers a runner row the way the broker does when one says hello: the owner's unless <paramref name="ownerId"/> says whose.</summary>
    protected Task AddRunnerAsync(string id, bool online, DateTimeOffset lastSeen, params string[] agents) =>
        AddRunnerAsync(id, online, lastSeen, OwnerId, agents);

    protected async Task AddRunnerAsync(string id, bool online, DateTimeOffset lastSeen, Guid ownerId, params string[] agents)
    {
        await using var db = Db();
        db.Runners.Add(new Runner
        {
            Id = id,
            OwnerId = ownerId,
            Name = id,
            Status = online ? RunnerStatuses.Online : RunnerStatuses.Offline,
            LastSeenAt = lastSeen,
            Version = "1.0.0",
            Agents = [.. agents],
            CreatedAt = lastSeen,
        });
        await db.SaveChangesAsync();
    }

    /// <summary>Appends a runner event like the broker: insert, fold into the project, NOTIFY, one transaction.</summary>
    protected async Task<long> AppendEventAsync(Guid projectId, ProjectEvent body, string runnerId = "test-runner", long? seq = null)
    {
        await using var db = Db();
        await using var tx = await db.Database.BeginTransactionAsync();
        var now = DateTimeOffset.UtcNow;
        var row = new Event
        {
            RunnerId = runnerId,
            Seq = seq ?? Interlocked.Increment(ref _seq),
            ProjectId = projectId,
            Type = Discriminators.Of(body),
            Payload = JsonSerializer.Serialize(body, LinkProtocol.JsonOptions),
            Timestamp = now,
            CreatedAt = now,
        };
        db.Events.Add(row);
        await db.SaveChangesAsync();
        var project = await db.Projects.FirstAsync(p => p.Id == projectId);
        ProjectProjector.Apply(project, body, row.Id, now);
        await db.SaveChangesAsync();
        await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.EventsChannel}, {projectId + ":" + row.Id})");
        await tx.CommitAsync();
        return row.Id;
    }

    private static long _seq;
}

/// <summary>Every log line the app writes, for checks that secrets stay out of them.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private sealed class Logger(CapturedLogs sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull
        {
            sink.Lines.Enqueue($"{category} scope: {Describe(state)}");
            return null;
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Lines.Enqueue($"{category} {logLevel}: {formatter(state, exception)} {Describe(state)} {exception}");

        private static string Describe(object? state) =>
            state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join("; ", pairs.Select(p => $"{p.Key}={p.Value}")) : state?.ToString() ?? "";
    }
}
