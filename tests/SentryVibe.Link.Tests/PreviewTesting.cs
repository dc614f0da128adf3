// What the preview tests share: a broker with a victim's and an attacker's token, a runner that records the tickets it is
// handed, a relayed GET, a running project row.
using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.Link.Tests;

/// <summary>
/// A database of its own, a broker that serves previews under <see cref="Domain"/> on it, and two runner tokens: the
/// victim's (runner id "victim") and an attacker's ("attacker"). One per test, so what a test counts is its own.
/// </summary>
public sealed record PreviewBroker(string Db, BrokerProcess Broker, string VictimToken, string AttackerToken) : IAsyncDisposable
{
    public const string Domain = "preview.example.test";

    public static async Task<PreviewBroker> StartAsync(PostgresFixture postgres)
    {
        var db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(db);
        var broker = await BrokerProcess.StartAsync(db, previewDomain: Domain);
        var (_, victim) = await Tokens.CreateAsync(db, "victim");
        var (_, attacker) = await Tokens.CreateAsync(db, "attacker");
        return new PreviewBroker(db, broker, victim, attacker);
    }

    /// <summary>GET / of <paramref name="preview"/> through this broker.</summary>
    public Task<HttpResponseMessage> GetAsync(string preview, TimeSpan timeout) => Previews.GetAsync(Broker.Port, $"{preview}.{Domain}", timeout);

    public Task<(Guid Project, string Preview)> AddRunningAsync(string runnerId) => Previews.AddRunningAsync(Db, runnerId);

    public ValueTask DisposeAsync() => Broker.DisposeAsync();
}

/// <summary>A runner that records each ticket it is handed and answers as the test says (its own dials, a refusal…).</summary>
public sealed class TicketRunner(Func<string, Task<PreviewChannelAck>> answer) : IRunnerService
{
    /// <summary>A runner that refuses every preview channel.</summary>
    public static TicketRunner Refusing() => new(_ => Task.FromResult(new PreviewChannelAck(false, "no dev server here")));

    public ConcurrentQueue<string> Tickets { get; } = new();

    public Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken) =>
        Task.FromResult(new CommandAck(envelope.Id, true));

    public Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken)
    {
        Tickets.Enqueue(request.Ticket);
        return answer(request.Ticket);
    }

    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) =>
        Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));
}

public static class Previews
{
    /// <summary>A value shaped like a ticket (or a spare key) that no broker issued.</summary>
    public static string MadeUpTicket() =>
        Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>GET / of a preview through the broker on <paramref name="port"/> (its Host names the preview).</summary>
    public static async Task<HttpResponseMessage> GetAsync(int port, string previewHost, TimeSpan timeout)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = timeout };
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/");
        request.Headers.Host = previewHost;
        return await http.SendAsync(request);
    }

    /// <summary>A project of <paramref name="runnerId"/> whose dev server is noted running; its id and preview id.</summary>
    public static async Task<(Guid Project, string Preview)> AddRunningAsync(string db, string runnerId)
    {
        var id = Guid.NewGuid();
        var preview = Guid.NewGuid().ToString("N");
        await using var context = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(db).Options);
        context.Projects.Add(new Project
        {
            Id = id, Slug = "preview-" + preview[..8], Name = "preview", Prompt = "p", TemplateId = "vite-react", Agent = "none",
            RunnerId = runnerId, Status = ProjectStatuses.Ready, PreviewId = preview,
            DevServer = new DevServerState { Status = DevServerStatuses.Running, Port = 1, Provider = "relay" },
            CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        });
        await context.SaveChangesAsync();
        return (id, preview);
    }
}
