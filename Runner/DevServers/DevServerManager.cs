// One dev server per project: install when needed, pick the port, run the template's command under the supervisor,
// stream its output, detect readiness, hand out the preview URL, report the exit.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
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

    private readonly ConcurrentDictionary<Guid, Session> _sessions = new();
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
        var plan = Plan(location);

        var gate = _gates.GetOrAdd(projectId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            await StopSessionAsync(projectId);
            var session = new Session(projectId, previewId, location, plan, options.Value);
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

    /// <summary>Dev servers noted as running belong to a runner that died without saying they stopped: say it now.</summary>
    async Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
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
        _sessions.TryRemove(new KeyValuePair<Guid, Session>(projectId, session));
    }

    private async Task RunAsync(Session s)
    {
        string? reason = null;
        int? exitCode = null;
        try
        {
            if (s.Plan.Install is { } install && !RestoreFromCache(s, install))
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
    private bool RestoreFromCache(Session s, PlannedCommand install)
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
        if (!_installCache.TryRestore(s.InstallKey, s.Location.Path))
        {
            return false;
        }
        s.RestoredKey = s.InstallKey;
        s.InstallKey = null;
        s.AddLine($"[sentryvibe] node_modules copied from an identical earlier install in {clock.Elapsed.TotalSeconds:0.0} s " +
            $"(skipped `{install.Display}`; cache: {_installCache.Root})", "stdout");
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

    private SupervisedProcess StartProcess(Session s, string name, PlannedCommand planned, int? port)
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

    /// <summary>
    /// Waits for the preview port (docs/architecture.md, "Which port is the preview"). The port the runner chose
    /// counts once it accepts connections and, where /proc tells, a process of the dev server's own tree listens on
    /// it. When the template passes that port on the command line, it is the only candidate: a port the output
    /// names (an API the dev script starts first, say) never replaces it. Without a port argument the port is only
    /// offered in PORT, so a port the output names is taken when the dev server's own tree listens on it and it
    /// answers HTML at <c>/</c>; a port another program holds is never taken.
    /// </summary>
    private async Task WatchReadinessAsync(Session s, SupervisedProcess devServer, CancellationToken ct)
    {
        try
        {
            int? ready = null;
            var startedAt = Environment.TickCount64;
            var noticed = false;
            var passed = s.Plan.PassesPort;
            var settled = new HashSet<int>();
            while (ready is null && !ct.IsCancellationRequested && !devServer.Completion.IsCompleted)
            {
                if (!noticed && Environment.TickCount64 - startedAt >= (long)options.Value.SlowStartNotice.TotalMilliseconds)
                {
                    noticed = true;
                    s.AddLine($"[sentryvibe] Still waiting for the dev server to accept connections on port {s.Port} " +
                        (passed
                            ? "(the port the runner passed in its port argument). If it listens elsewhere, make it honour the port argument."
                            : "(or to print the local URL of a page it serves). If it uses another port, make its run command honour PORT."), "stderr");
                }
                var announced = s.AnnouncedPorts();
                if (await AcceptsAsync(s.Port!.Value, ct) && OwnedBy(devServer, s.Port.Value) != false)
                {
                    ready = s.Port;
                    break;
                }
                foreach (var port in announced.Where(p => p != s.Port && !settled.Contains(p)))
                {
                    if (passed)
                    {
                        settled.Add(port);
                        s.AddLine($"[sentryvibe] The output names port {port}; the preview stays on port {s.Port}, the one the runner passed.", "stdout");
                        continue;
                    }
                    if (!await AcceptsAsync(port, ct))
                    {
                        continue; // announced a moment before it listens
                    }
                    var owned = OwnedBy(devServer, port);
                    if (owned != true)
                    {
                        settled.Add(port);
                        s.AddLine(owned is null
                            ? $"[sentryvibe] The output names port {port}, but this system cannot tell which program listens there; not previewed. Make the run command honour PORT."
                            : $"[sentryvibe] The output names port {port}, but another program listens there; not previewed.", "stderr");
                        continue;
                    }
                    var html = await ServesHtmlAsync(port, ct);
                    if (html == true)
                    {
                        ready = port;
                        break;
                    }
                    if (html == false)
                    {
                        settled.Add(port);
                        s.AddLine($"[sentryvibe] Port {port} (named in the output) does not answer HTML at /; not previewed.", "stdout");
                    }
                }
                if (ready is not null)
                {
                    break;
                }
                await Task.WhenAny(s.PortAnnounced, Task.Delay(150, ct));
            }
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

    private static async Task FlushLogSummariesAsync(Session s, CancellationToken ct)
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

    /// <summary>Whether a process of the dev server's tree (or process group) listens on the port; null where unknown.</summary>
    private static bool? OwnedBy(SupervisedProcess devServer, int port) =>
        devServer.ProcessId > 0
            ? ProcessTable.Listens(ProcessTable.TreeAndGroup(devServer.ProcessId, devServer.OwnGroup ? devServer.ProcessId : null), port)
            : ProcessTable.HasProcFs ? false : null;

    private static readonly HttpClient Probe = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>Whether GET / answers with a text/html content type; null when it could not be asked (yet).</summary>
    private static async Task<bool?> ServesHtmlAsync(int port, CancellationToken ct)
    {
        foreach (var host in new[] { "127.0.0.1", "[::1]" })
        {
            try
            {
                using var response = await Probe.GetAsync($"http://{host}:{port}/", HttpCompletionOption.ResponseHeadersRead, ct);
                return response.Content.Headers.ContentType?.MediaType is { } type
                    && type.Equals("text/html", StringComparison.OrdinalIgnoreCase);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
            }
        }
        return null;
    }

    private static async Task<bool> AcceptsAsync(int port, CancellationToken ct)
    {
        foreach (var address in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromMilliseconds(500));
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), timeout.Token);
                return true;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
            }
        }
        return false;
    }

    private async Task PublishAsync(Session s)
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

    private DevServerPlan Plan(ProjectLocation location)
    {
        try
        {
            var runCommand = location.RunCommand ?? PackageJson.RunCommand(location.Path)
                ?? throw new DevServerException($"The project at {location.Path} has no run command (and its package.json no dev or start script).");
            var run = CommandLine.Parse(runCommand);
            var portArgument = string.IsNullOrWhiteSpace(location.PortArgument) ? [] : CommandLine.Split(location.PortArgument);

            var needsInstall = File.Exists(Path.Combine(location.Path, "package.json"))
                && !Directory.Exists(Path.Combine(location.Path, "node_modules"));
            PlannedCommand? install = null;
            if (needsInstall)
            {
                var parsed = CommandLine.Parse(options.Value.InstallCommand);
                install = new PlannedCommand(parsed.Program, parsed.Arguments, parsed.Environment);
            }
            return new DevServerPlan(install, run, portArgument);
        }
        catch (FormatException ex)
        {
            throw new DevServerException(ex.Message, ex);
        }
    }

    private sealed record PlannedCommand(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment)
    {
        public string Display => string.Join(' ', Arguments.Select(Quote).Prepend(Program));

        private static string Quote(string a) => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"\"{a}\"" : a;
    }

    private sealed record DevServerPlan(PlannedCommand? Install, CommandLine Run, IReadOnlyList<string> PortArgument)
    {
        /// <summary>The run command itself carries the chosen port (not only the PORT variable).</summary>
        public bool PassesPort => PortArgument.Any(a => a.Contains("{port}", StringComparison.Ordinal));

        /// <summary>
        /// The run command with the template's port argument ("-- --port {port}") appended; when the run command
        /// already passes "--" through npm, the port argument's own "--" is dropped so the port still reaches the tool.
        /// </summary>
        public PlannedCommand RunWithPort(int port)
        {
            var portArgs = PortArgument.Select(a => a.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
            if (Run.Arguments.Contains("--") && PortArgument.FirstOrDefault() == "--")
            {
                portArgs = portArgs.Skip(1);
            }
            return new PlannedCommand(Run.Program, Run.Arguments.Concat(portArgs).ToList(), Run.Environment);
        }
    }

    private sealed class Session(Guid projectId, string? previewId, ProjectLocation location, DevServerPlan plan, DevServerOptions options)
    {
        private readonly Queue<string> _lastLines = new();
        private readonly object _gate = new();
        private readonly List<int> _announcedPorts = [];
        private TaskCompletionSource _portAnnounced = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly int _maxLastLines = Math.Max(1, options.LastLines);
        private volatile bool _stopRequested;

        public Guid ProjectId { get; } = projectId;
        public string? PreviewId { get; } = previewId;
        public ProjectLocation Location { get; } = location;
        public DevServerPlan Plan { get; } = plan;
        public LogThrottle Throttle { get; } = new(Math.Max(1, options.MaxLogLinesPerSecond));
        public Channel<ProjectEvent> Events { get; } = Channel.CreateUnbounded<ProjectEvent>(new() { SingleReader = true });
        public Task Publisher { get; set; } = Task.CompletedTask;
        public Task Completion { get; set; } = Task.CompletedTask;
        public volatile SupervisedProcess? Current;
        public volatile SupervisedProcess? DevServer;
        public int? Port { get; set; }
        public int? DetectedPort { get; set; }
        /// <summary>Completes when the output names a port it had not named before.</summary>
        public Task PortAnnounced
        {
            get
            {
                lock (_gate)
                {
                    return _portAnnounced.Task;
                }
            }
        }

        /// <summary>Every port the output named so far, in the order it named them.</summary>
        public IReadOnlyList<int> AnnouncedPorts()
        {
            lock (_gate)
            {
                return _announcedPorts.ToList();
            }
        }
        public bool PreviewStarted { get; set; }
        /// <summary>The install cache entry this session's install will be stored under.</summary>
        public string? InstallKey { get; set; }
        /// <summary>The install cache entry this session's node_modules were copied from.</summary>
        public string? RestoredKey { get; set; }
        public bool StopRequested => _stopRequested;

        public void RequestStop() => _stopRequested = true;

        public void Emit(ProjectEvent body) => Events.Writer.TryWrite(body);

        public void AddLine(string raw, string stream)
        {
            var line = OutputPortDetector.StripAnsi(raw).TrimEnd();
            if (line.Length == 0)
            {
                return;
            }
            if (line.Length > 2000)
            {
                line = line[..2000] + "…";
            }
            lock (_gate)
            {
                _lastLines.Enqueue(line);
                while (_lastLines.Count > _maxLastLines)
                {
                    _lastLines.Dequeue();
                }
                // The runner's own notes ("[sentryvibe] …") name ports too; only the dev server's output announces one.
                if (!line.StartsWith("[sentryvibe]", StringComparison.Ordinal)
                    && OutputPortDetector.Detect(line) is { } port && !_announcedPorts.Contains(port) && _announcedPorts.Count < 16)
                {
                    _announcedPorts.Add(port);
                    _portAnnounced.TrySetResult();
                    _portAnnounced = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
            foreach (var accepted in Throttle.Offer(line, Environment.TickCount64))
            {
                Emit(new DevServerLog(accepted, stream));
            }
        }

        public IReadOnlyList<string> LastLines()
        {
            lock (_gate)
            {
                return _lastLines.ToList();
            }
        }
    }
}
