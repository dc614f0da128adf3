// One dev server per project: install when needed, pick the port, run the template's command under the supervisor,
// stream its output, detect readiness, hand out the preview URL, report the exit.
using System.Collections.Concurrent;
using CliWrap;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Previews;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

public sealed class DevServerManager(
    ProcessSupervisor supervisor,
    IProjectLocator locator,
    IEventSink events,
    IPreviewUrlProvider previews,
    IOptions<DevServerOptions> options,
    ILogger<DevServerManager>? logger = null,
    ChildEnvironment? childEnvironment = null) : IDevServerControl, IPreviewTargets, IHostedService
{
    /// <summary>Installs and dev servers get the allow-listed environment and what is set here, nothing of the runner's own (docs/security.md).</summary>
    private readonly ChildEnvironment _childEnvironment = childEnvironment ?? ChildEnvironment.Default;

    public static class Reasons
    {
        public const string Crashed = "crashed";
        public const string Stopped = "stopped";
        public const string InstallFailed = "install-failed";
    }

    private readonly ConcurrentDictionary<Guid, DevServerSession> _sessions = new();
    private readonly ConcurrentDictionary<Guid, SemaphoreSlim> _gates = new();
    private readonly PortAllocator _ports = new();
    private readonly ILogger _logger = logger ?? NullLogger<DevServerManager>.Instance;
    /// <summary>Dev servers running now, noted on disk: after a crash of the runner their projects hear that they stopped.</summary>
    private readonly ProjectMarks? _running = options.Value.StateDirectory is { } state ? new ProjectMarks(state, "running") : null;
    private readonly InstallCache? _installCache = string.IsNullOrWhiteSpace(options.Value.InstallCacheDirectory)
        ? null
        : new InstallCache(options.Value.InstallCacheDirectory, options.Value.InstallCacheEntries, logger);

    /// <summary>
    /// Starts (or restarts) the project's dev server. Returns once it is under way; installation, readiness and the
    /// preview URL are reported as events. Throws <see cref="DevServerException"/> for requests it refuses.
    /// </summary>
    public async Task StartAsync(Guid projectId, string? previewId, CancellationToken ct)
    {
        var location = locator.Find(projectId)
            ?? throw new DevServerException($"Project {projectId} is not on this runner.");
        if (!Directory.Exists(location.Path))
        {
            throw new DevServerException($"The project folder {location.Path} does not exist.");
        }
        var plan = DevServerPlan.For(location, options.Value.InstallCommand);

        var gate = _gates.GetOrAdd(projectId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            await StopSessionAsync(projectId);
            var session = new DevServerSession(projectId, previewId, location, plan, options.Value);
            _sessions[projectId] = session;
            NoteRunning(projectId, running: true);
            session.Publisher = Task.Run(() => PublishAsync(session));
            session.Completion = Task.Run(() => RunAsync(session));
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task StopAsync(Guid projectId, CancellationToken ct)
    {
        var gate = _gates.GetOrAdd(projectId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            await StopSessionAsync(projectId);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The port a preview channel may connect to: the running dev server's, else nothing.</summary>
    public int? GetDevServerPort(Guid projectId) =>
        _sessions.TryGetValue(projectId, out var s) && s.DevServer is { Completion.IsCompleted: false }
            ? s.DetectedPort ?? s.Port
            : null;

    /// <summary>
    /// Dev servers noted as running belong to a runner that died without saying they stopped: say it now. Copies into the
    /// install cache that such a runner left half made are removed in the background.
    /// </summary>
    async Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        if (_installCache is { } cache) _ = Task.Run(cache.RemoveAbandoned, CancellationToken.None);
        if (_running is null)
        {
            return;
        }
        foreach (var projectId in _running.List())
        {
            if (_sessions.ContainsKey(projectId))
            {
                continue;
            }
            await events.PublishAsync(projectId, new DevServerExited(null,
                ["[sentryvibe] The runner stopped (it was killed or crashed) while this dev server ran. Start it again."], Reasons.Stopped));
            NoteRunning(projectId, running: false);
        }
    }

    /// <summary>Runner shutdown: every dev server stops (and says so) before the supervisor sweeps what is left.</summary>
    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        var all = Task.WhenAll(_sessions.Keys.Select(StopSessionAsync));
        await Task.WhenAny(all, Task.Delay(Timeout.Infinite, cancellationToken));
    }

    private async Task StopSessionAsync(Guid projectId)
    {
        if (!_sessions.TryGetValue(projectId, out var session))
        {
            return;
        }
        session.RequestStop();
        if (session.Current is { } process)
        {
            await supervisor.StopAsync(process, options.Value.StopGracePeriod);
        }
        await session.Completion;
        _sessions.TryRemove(new KeyValuePair<Guid, DevServerSession>(projectId, session));
    }

    private async Task RunAsync(DevServerSession s)
    {
        string? reason = null;
        int? exitCode = null;
        try
        {
            if (s.Plan.Install is { } install && !await RestoreFromCacheAsync(s, install))
            {
                s.Emit(new DevServerStarting(install.Display, null, "installing"));
                var installer = StartProcess(s, "npm install", install, port: null);
                var result = await installer.Completion;
                if (s.StopRequested)
                {
                    (exitCode, reason) = (result.ExitCode, Reasons.Stopped);
                    return;
                }
                if (result.ExitCode != 0 || result.Error is not null)
                {
                    if (result.Error is not null)
                    {
                        s.AddLine(result.Error.Message, "stderr");
                    }
                    (exitCode, reason) = (result.ExitCode, Reasons.InstallFailed);
                    return;
                }
                if (s.InstallKey is { } key)
                {
                    await Task.Run(() => _installCache!.Store(key, s.Location.Path));
                }
            }

            s.Port = _ports.Reserve(options.Value.PreferDefaultPort ? s.Location.DefaultPort : null);
            var run = s.Plan.RunWithPort(s.Port.Value);
            s.Emit(new DevServerStarting(run.Display, s.Port, "starting"));
            var devServer = StartProcess(s, "dev-server", run, s.Port);
            s.DevServer = devServer;

            using var readinessCts = new CancellationTokenSource();
            var readiness = WatchReadinessAsync(s, devServer, readinessCts.Token);
            var flushing = FlushLogSummariesAsync(s, readinessCts.Token);
            var exit = await devServer.Completion;
            await readinessCts.CancelAsync();
            await Task.WhenAll(readiness, flushing);
            if (s.PreviewStarted)
            {
                await previews.StopAsync(s.ProjectId);
            }
            if (exit.Error is not null)
            {
                s.AddLine(exit.Error.Message, "stderr");
            }
            (exitCode, reason) = (exit.ExitCode, s.StopRequested || exit.StopRequested ? Reasons.Stopped : Reasons.Crashed);
            if (reason == Reasons.Crashed && s.RestoredKey is { } restored && s.DetectedPort is null)
            {
                // It never came up on a copied install: don't hand that copy to the next project.
                _installCache?.Forget(restored);
                s.AddLine("[sentryvibe] The dev server exited before it was ready on a cached install; the next start installs afresh.", "stderr");
            }
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Dev server of project {ProjectId} failed to start", s.ProjectId);
            s.AddLine(ex.Message, "stderr");
            reason = s.StopRequested ? Reasons.Stopped : Reasons.Crashed;
        }
        finally
        {
            if (s.Throttle.Flush(Environment.TickCount64, final: true) is { } summary)
            {
                s.Emit(new DevServerLog(summary));
            }
            s.Emit(new DevServerExited(exitCode, s.LastLines(), reason ?? Reasons.Crashed));
            s.Events.Writer.TryComplete();
            await s.Publisher;
            NoteRunning(s.ProjectId, running: false);
            if (s.Port is { } port)
            {
                _ports.Release(port);
            }
        }
    }

    /// <summary>A copy of an earlier identical install instead of running it; false when there is none.</summary>
    private async Task<bool> RestoreFromCacheAsync(DevServerSession s, PlannedCommand install)
    {
        if (_installCache is null)
        {
            return false;
        }
        try
        {
            s.InstallKey = InstallCache.KeyFor(s.Location.Path, install.Display);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var how = await _installCache.TryRestoreAsync(s.InstallKey, s.Location.Path);
        if (how == InstallRestore.None)
        {
            return false;
        }
        s.RestoredKey = s.InstallKey;
        s.InstallKey = null;
        s.AddLine($"[sentryvibe] node_modules {(how == InstallRestore.Spare ? "moved in" : "copied")} from an identical earlier install " +
            $"in {clock.Elapsed.TotalSeconds:0.0} s (skipped `{install.Display}`; cache: {_installCache.Root})", "stdout");
        return true;
    }

    private void NoteRunning(Guid projectId, bool running)
    {
        try
        {
            if (running)
            {
                _running?.Set(projectId);
            }
            else
            {
                _running?.Clear(projectId);
            }
        }
        catch (IOException e)
        {
            _logger.LogWarning(e, "Could not note the dev server of {ProjectId} as {State}", projectId, running ? "running" : "ended");
        }
    }

    private SupervisedProcess StartProcess(DevServerSession s, string name, PlannedCommand planned, int? port)
    {
        var environment = new Dictionary<string, string?>(planned.Environment.Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value)))
        {
            ["BROWSER"] = "none",
            ["FORCE_COLOR"] = "0",
            ["NO_COLOR"] = "1",
            ["NEXT_TELEMETRY_DISABLED"] = "1",
            ["ASTRO_TELEMETRY_DISABLED"] = "1",
        };
        if (port is not null)
        {
            environment["PORT"] = port.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        var command = Cli.Wrap(planned.Program)
            .WithArguments(planned.Arguments)
            .WithWorkingDirectory(s.Location.Path)
            .WithEnvironmentVariables(_childEnvironment.For(set: environment))
            .WithStandardOutputPipe(PipeTarget.ToDelegate(line => s.AddLine(line, "stdout")))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(line => s.AddLine(line, "stderr")));
        var process = supervisor.Start(name, s.ProjectId, command);
        s.Current = process;
        if (s.StopRequested)
        {
            // Stop arrived while we were starting: the stopper may have missed this process.
            _ = supervisor.StopAsync(process, options.Value.StopGracePeriod);
        }
        return process;
    }

    /// <summary>Waits for the preview port (<see cref="PreviewPortWatch"/>), then starts the preview and says where it is.</summary>
    private async Task WatchReadinessAsync(DevServerSession s, SupervisedProcess devServer, CancellationToken ct)
    {
        try
        {
            var ready = await PreviewPortWatch.WaitAsync(s, devServer, options.Value.SlowStartNotice, ct);
            if (ready is null || ct.IsCancellationRequested)
            {
                return;
            }

            s.DetectedPort = ready;
            string url;
            var provider = previews.Name;
            try
            {
                s.PreviewStarted = true;
                url = await previews.StartAsync(s.ProjectId, s.PreviewId, ready.Value, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The app runs; only the public URL failed. Say why and fall back to the local address.
                s.AddLine($"[sentryvibe] The {previews.Name} preview could not start: {ex.Message}", "stderr");
                url = $"http://localhost:{ready.Value}/";
                provider = PreviewProviders.Local;
            }
            s.Emit(new PortDetected(ready.Value, url, provider));
        }
        catch (OperationCanceledException)
        {
        }
    }


    private static async Task FlushLogSummariesAsync(DevServerSession s, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                if (s.Throttle.Flush(Environment.TickCount64) is { } summary)
                {
                    s.Emit(new DevServerLog(summary));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }


    private async Task PublishAsync(DevServerSession s)
    {
        await foreach (var body in s.Events.Reader.ReadAllAsync())
        {
            try
            {
                await events.PublishAsync(s.ProjectId, body);
            }
            catch (Exception ex)
            {
                _logger.LogWarning(ex, "Could not publish {Event} for project {ProjectId}", body.GetType().Name, s.ProjectId);
            }
        }
    }

}
