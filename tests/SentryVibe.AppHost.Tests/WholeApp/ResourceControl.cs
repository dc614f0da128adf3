// Faults on the running whole app: kill a service's process outright, stop it the way the dashboard does, start it
// again through Aspire's own resource commands, and look at the database the services share.
using System.Diagnostics;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Npgsql;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

public static class ResourceControl
{
    private static readonly TimeSpan StateTimeout = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan RestartTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The pid DCP started for the resource (the service itself: projects run as `dotnet exec`-style executables).</summary>
    public static int PidOf(this RunningApp app, string resource)
    {
        Assert.True(app.App.ResourceNotifications.TryGetCurrentState(resource, out var state), $"no resource '{resource}'");
        var pid = state!.Snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value;
        return pid switch
        {
            int i => i,
            long l => (int)l,
            string s when int.TryParse(s, out var i) => i,
            _ => throw new InvalidOperationException($"'{resource}' has no pid (state {state.Snapshot.State?.Text})."),
        };
    }

    public static string? StateOf(this RunningApp app, string resource) =>
        app.App.ResourceNotifications.TryGetCurrentState(resource, out var state) ? state.Snapshot.State?.Text : null;

    /// <summary>SIGKILL to the service and everything it started: no shutdown code runs, as in a crash or an OOM kill.</summary>
    public static async Task KillAsync(this RunningApp app, string resource)
    {
        var pid = app.PidOf(resource);
        using (var process = Process.GetProcessById(pid))
        {
            process.Kill(entireProcessTree: true);
        }
        await Eventually.WaitAsync(() => Task.FromResult(!ProcessProbe.IsAlive(pid)), StateTimeout, $"{resource} (pid {pid}) to die");
        await WaitForStateAsync(app, resource, KnownResourceStates.TerminalStates);
    }

    /// <summary>Aspire's "Stop" command, as the dashboard sends it: the service gets its graceful shutdown.</summary>
    public static async Task StopAsync(this RunningApp app, string resource)
    {
        var result = await app.App.ResourceCommands.ExecuteCommandAsync(resource, KnownResourceCommands.StopCommand);
        Assert.True(result.Success, $"stopping {resource}: {result.Message}");
        await WaitForStateAsync(app, resource, KnownResourceStates.TerminalStates);
    }

    /// <summary>Aspire's "Start" command on a stopped or dead service; returns once its /health answers again.</summary>
    public static async Task StartAgainAsync(this RunningApp app, string resource)
    {
        var result = await app.App.ResourceCommands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand);
        Assert.True(result.Success, $"starting {resource}: {result.Message}");
        await WaitForStateAsync(app, resource, [KnownResourceStates.Running], RestartTimeout);
        using var timeout = new CancellationTokenSource(RestartTimeout);
        await app.App.ResourceNotifications.WaitForResourceHealthyAsync(resource, timeout.Token);
    }

    /// <summary>For finally blocks: whatever a failed test left dead is started again, so the next test has a whole app.</summary>
    public static async Task EnsureRunningAsync(this RunningApp app, string resource)
    {
        if (app.StateOf(resource) == KnownResourceStates.Running) return;
        await app.StartAgainAsync(resource);
    }

    public static async Task<NpgsqlConnection> OpenDatabaseAsync(this RunningApp app)
    {
        var connectionString = await app.App.GetConnectionStringAsync("sentryvibe")
            ?? throw new InvalidOperationException("The app has no 'sentryvibe' connection string.");
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task WaitForStateAsync(RunningApp app, string resource, IEnumerable<string> states, TimeSpan? timeout = null)
    {
        var wanted = states.ToHashSet();
        using var cts = new CancellationTokenSource(timeout ?? StateTimeout);
        try
        {
            await app.App.ResourceNotifications.WaitForResourceAsync(resource, e => e.Snapshot.State?.Text is { } s && wanted.Contains(s), cts.Token);
        }
        catch (OperationCanceledException e)
        {
            throw new TimeoutException($"'{resource}' did not reach {string.Join("/", wanted)} (it is {app.StateOf(resource)}).", e);
        }
    }
}
