using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

public static class LinkStates
{
    public const string Connecting = "connecting";
    public const string Connected = "connected";
    public const string Disconnected = "disconnected";
    public const string Unauthorized = "unauthorized";
    public const string Incompatible = "incompatible";
    /// <summary>The broker refused this runner id for this token; <see cref="LinkState.LastError"/> says why.</summary>
    public const string Refused = "refused";
    public const string Stopped = "stopped";
}

/// <summary>What the link is doing right now; the status file and the health check read it.</summary>
public sealed class LinkState
{
    private readonly Lock _lock = new();

    public string State { get; private set; } = LinkStates.Disconnected;
    public string? BrokerId { get; private set; }
    public string? PreviewDomain { get; private set; }
    public DateTimeOffset? Since { get; private set; }
    public string? LastError { get; private set; }
    public int Attempt { get; private set; }

    /// <summary>The spare preview sockets of the link now open (null between links).</summary>
    internal SentryVibe.Runner.Previews.PreviewSpares? PreviewSpares { get; set; }

    public void Set(string state, string? error = null, int attempt = 0, string? brokerId = null, string? previewDomain = null)
    {
        lock (_lock)
        {
            if (state != State) Since = DateTimeOffset.UtcNow;
            State = state;
            LastError = error ?? (state == LinkStates.Connected ? null : LastError);
            Attempt = attempt;
            if (brokerId is not null) BrokerId = brokerId;
            if (previewDomain is not null) PreviewDomain = previewDomain;
        }
    }
}

/// <summary>The file <c>sentryvibe-runner status</c> reads: <c>&lt;home&gt;/runners/&lt;id&gt;/status.json</c>.</summary>
public sealed record RunnerStatusFile(
    string RunnerId,
    int Pid,
    string Broker,
    string State,
    DateTimeOffset? Since,
    string? BrokerId,
    string? PreviewDomain,
    string? LastError,
    long LastSeq,
    long AckedSeq,
    int PendingEvents,
    IReadOnlyList<Guid> ActiveBuilds,
    DateTimeOffset UpdatedAt,
    string? Sandbox = null) // "agent sandbox: on (bubblewrap)" or "agent not sandboxed: <why>"
{
    public const string FileName = "status.json";

    public static JsonSerializerOptions Json { get; } = new(LinkProtocol.JsonOptions) { WriteIndented = true };

    /// <summary>A status older than this is from a runner that died without cleaning up.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(15);
}

/// <summary>Writes the status file every two seconds and removes it on a clean stop.</summary>
public sealed class StatusFileWriter(
    IOptions<RunnerOptions> options,
    LinkState state,
    EventOutbox outbox,
    ActiveBuilds builds,
    Agents.AgentSandbox? sandbox = null,
    IOptions<Agents.AgentOptions>? agents = null) : BackgroundService
{
    private string PathOf => Path.Combine(options.Value.StateDirectory, RunnerStatusFile.FileName);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            do { Write(); }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) { }
        finally
        {
            try { File.Delete(PathOf); } catch (IOException) { }
        }
    }

    private void Write()
    {
        var o = options.Value;
        var status = new RunnerStatusFile(o.RunnerId, Environment.ProcessId, o.BrokerUrl is null ? "" : o.BrokerUri.ToString(), state.State, state.Since,
            state.BrokerId, state.PreviewDomain, state.LastError, outbox.LastSeq, outbox.AckedSeq, outbox.PendingCount, builds.Current, DateTimeOffset.UtcNow,
            Agents.AgentSandbox.Describe(sandbox, agents?.Value));
        OwnerOnly.Directory(o.StateDirectory);
        var temp = PathOf + ".tmp";
        OwnerOnly.WriteAllText(temp, JsonSerializer.Serialize(status, RunnerStatusFile.Json));
        File.Move(temp, PathOf, overwrite: true);
    }
}
