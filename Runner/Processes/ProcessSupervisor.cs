// The one owner of every process the runner starts: it lists them, stops them (graceful, then the whole tree),
// and makes sure none outlives the runner — on host shutdown, on process exit and on Ctrl+C.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using CliWrap;
using CliWrap.Builders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SentryVibe.Runner.Processes;

/// <summary>What <see cref="ProcessSupervisor.List"/> shows about one process.</summary>
public sealed record SupervisedProcessInfo(Guid Id, string Name, Guid? ProjectId, int ProcessId, DateTimeOffset StartedAt, string Command);

/// <summary>How a supervised process ended. <see cref="ExitCode"/> is null when it never ran or the code was lost.</summary>
public sealed record SupervisedExit(int? ExitCode, bool StopRequested, Exception? Error);

public sealed class SupervisedProcess
{
    private readonly TaskCompletionSource<int?> _leaderExited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _stopRequested;

    internal SupervisedProcess(SupervisedProcessInfo info)
    {
        Info = info;
    }

    public SupervisedProcessInfo Info { get; private set; }

    public Guid Id => Info.Id;

    public int ProcessId => Info.ProcessId;

    /// <summary>True once someone asked it to stop (so its exit is "stopped", not "crashed").</summary>
    public bool StopRequested => Volatile.Read(ref _stopRequested) == 1;

    /// <summary>Completes when the process and everything it started are gone; never faults.</summary>
    public Task<SupervisedExit> Completion { get; internal set; } = null!;

    internal CancellationTokenSource Graceful { get; } = new();

    internal CancellationTokenSource Forceful { get; } = new();

    /// <summary>True when the process was started in its own process group (pgid = pid).</summary>
    internal bool OwnGroup { get; set; }

    internal Task<int?> LeaderExited => _leaderExited.Task;

    internal void SetPid(int pid) => Info = Info with { ProcessId = pid };

    internal void OnLeaderExited(int? exitCode) => _leaderExited.TrySetResult(exitCode);

    internal bool MarkStopRequested() => Interlocked.Exchange(ref _stopRequested, 1) == 0;
}

public sealed class ProcessSupervisor : IHostedService, IAsyncDisposable, IDisposable
{
    /// <summary>How long a process gets to exit after SIGINT before its whole tree is killed.</summary>
    public static readonly TimeSpan DefaultGracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>How long leftovers (grandchildren) get after SIGTERM before SIGKILL.</summary>
    private static readonly TimeSpan LeftoverGrace = TimeSpan.FromSeconds(2);

    private static readonly string? SetsidPath = OperatingSystem.IsLinux()
        ? new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists)
        : null;

    private readonly ConcurrentDictionary<Guid, SupervisedProcess> _processes = new();
    private readonly ILogger<ProcessSupervisor> _logger;
    private readonly TimeSpan _gracePeriod;
    private readonly List<PosixSignalRegistration> _signals = [];
    private int _disposed;

    public ProcessSupervisor(ILogger<ProcessSupervisor>? logger = null, TimeSpan? gracePeriod = null)
    {
        _logger = logger ?? NullLogger<ProcessSupervisor>.Instance;
        _gracePeriod = gracePeriod ?? DefaultGracePeriod;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        Console.CancelKeyPress += OnCancelKeyPress;

        // Without a host, SIGTERM (service managers, `kill`) and SIGHUP (terminal closed) end .NET without raising
        // ProcessExit, so they get their own handler; it does not cancel the signal, so a host still shuts down.
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
        {
            try
            {
                _signals.Add(PosixSignalRegistration.Create(signal, _ => OnProcessExit(this, EventArgs.Empty)));
            }
            catch (PlatformNotSupportedException)
            {
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="command"/> and tracks it under <paramref name="name"/>. Pipes, environment and working
    /// folder are the command's own; exit codes are data here (validation is turned off). Throws when it cannot start.
    /// </summary>
    public SupervisedProcess Start(string name, Guid? projectId, Command command)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);

        var target = ExecutableLocator.Find(command.TargetFilePath, command.EnvironmentVariables.GetValueOrDefault("PATH"))
            ?? throw new ExecutableNotFoundException(command.TargetFilePath);
        var display = $"{command.TargetFilePath} {command.Arguments}".TrimEnd();
        var process = new SupervisedProcess(new SupervisedProcessInfo(Guid.NewGuid(), name, projectId, 0, DateTimeOffset.UtcNow, display));

        var task = command
            .WithTargetFile(target)
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(
                startInfo =>
                {
                    // setsid gives the child its own session and process group (pgid = its pid, as it is not a group
                    // leader it execs in place), so the terminal's Ctrl+C does not hit it behind our back and
                    // grandchildren stay findable after their parent died.
                    if (SetsidPath is not null)
                    {
                        startInfo.Arguments = $"{new ArgumentsBuilder().Add(startInfo.FileName).Build()} {startInfo.Arguments}".TrimEnd();
                        startInfo.FileName = SetsidPath;
                        process.OwnGroup = true;
                    }
                },
                p => p.Exited += (_, _) =>
                {
                    int? code = null;
                    try
                    {
                        code = p.ExitCode;
                    }
                    catch (InvalidOperationException)
                    {
                    }
                    process.OnLeaderExited(code);
                },
                process.Forceful.Token,
                process.Graceful.Token);

        process.SetPid(task.ProcessId);
        _processes[process.Id] = process;
        process.Completion = RunAsync(process, task);
        _logger.LogInformation("Started {Name} (pid {Pid}) for project {ProjectId}: {Command}", name, task.ProcessId, projectId, display);
        return process;
    }

    public IReadOnlyList<SupervisedProcessInfo> List() =>
        _processes.Values.Select(p => p.Info).OrderBy(p => p.StartedAt).ToList();

    public SupervisedProcess? Get(Guid id) => _processes.GetValueOrDefault(id);

    /// <summary>SIGINT (CliWrap's graceful cancellation), then after the grace period SIGKILL to the whole tree.</summary>
    public async Task<SupervisedExit> StopAsync(SupervisedProcess process, TimeSpan? gracePeriod = null)
    {
        if (process.MarkStopRequested() && !process.Completion.IsCompleted)
        {
            _logger.LogInformation("Stopping {Name} (pid {Pid})", process.Info.Name, process.ProcessId);
            try
            {
                await process.Graceful.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // It finished while we were asking.
            }
        }

        var grace = Task.Delay(gracePeriod ?? _gracePeriod);
        if (await Task.WhenAny(process.Completion, grace) == grace)
        {
            _logger.LogWarning("{Name} (pid {Pid}) ignored SIGINT; killing its process tree", process.Info.Name, process.ProcessId);
            KillTree(process);
        }
        return await process.Completion;
    }

    public Task StopProjectAsync(Guid projectId) =>
        Task.WhenAll(_processes.Values.Where(p => p.Info.ProjectId == projectId).Select(p => StopAsync(p)));

    public Task StopAllAsync(TimeSpan? gracePeriod = null) =>
        Task.WhenAll(_processes.Values.Select(p => StopAsync(p, gracePeriod)));

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        var all = StopAllAsync();
        await Task.WhenAny(all, Task.Delay(Timeout.Infinite, cancellationToken));
        if (!all.IsCompleted)
        {
            KillAll();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        Console.CancelKeyPress -= OnCancelKeyPress;
        foreach (var registration in _signals)
        {
            registration.Dispose();
        }
        await StopAllAsync();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Last resort when the runner is going away now: SIGKILL every tree, synchronously.</summary>
    public void KillAll()
    {
        foreach (var process in _processes.Values)
        {
            process.MarkStopRequested();
            KillTree(process);
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        // A signal or a plain exit without the host's graceful stop: a short interrupt-then-kill, as the runtime
        // allows only a few seconds here.
        try
        {
            StopAllAsync(TimeSpan.FromSeconds(2)).Wait(TimeSpan.FromSeconds(3));
        }
        finally
        {
            KillAll();
        }
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        // Our children live in their own process groups, so the terminal's SIGINT did not reach them. Give them the
        // same chance a terminal would (interrupt, short grace), then make sure nothing is left, whether or not the
        // host goes on to shut down gracefully.
        try
        {
            StopAllAsync(TimeSpan.FromSeconds(3)).Wait(TimeSpan.FromSeconds(5));
        }
        finally
        {
            KillAll();
        }
    }

    private async Task<SupervisedExit> RunAsync(SupervisedProcess process, CommandTask<CommandResult> task)
    {
        int? exitCode = null;
        Exception? error = null;
        try
        {
            var first = await Task.WhenAny(task.Task, process.LeaderExited);
            if (first == process.LeaderExited)
            {
                exitCode = await process.LeaderExited;

                // Whatever the leader left behind (grandchildren) still holds its output pipes; end it so the
                // pipes close and nothing of this command outlives it.
                await SweepLeftoversAsync(process);
                if (await Task.WhenAny(task.Task, Task.Delay(TimeSpan.FromSeconds(5))) != task.Task)
                {
                    await process.Forceful.CancelAsync();
                }
            }

            var result = await task;
            exitCode ??= result.ExitCode;
        }
        catch (OperationCanceledException)
        {
            // Stopped through a cancellation token; the exit code (if any) came from the Exited event.
        }
        catch (Exception ex)
        {
            error = ex;
            _logger.LogWarning(ex, "{Name} (pid {Pid}) failed", process.Info.Name, process.ProcessId);
        }
        finally
        {
            await SweepLeftoversAsync(process);
            _processes.TryRemove(process.Id, out _);
            process.Graceful.Dispose();
            process.Forceful.Dispose();
        }

        _logger.LogInformation("{Name} (pid {Pid}) exited with {ExitCode}", process.Info.Name, process.ProcessId, exitCode);
        return new SupervisedExit(exitCode, process.StopRequested, error);
    }

    private static IReadOnlyList<ProcessEntry> TreeOf(SupervisedProcess process) =>
        process.ProcessId > 0
            ? ProcessTable.TreeAndGroup(process.ProcessId, process.OwnGroup ? process.ProcessId : null)
            : [];

    private static void KillTree(SupervisedProcess process)
    {
        ProcessTable.Signal(TreeOf(process), ProcessTable.SigKill);
        try
        {
            process.Forceful.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static Task SweepLeftoversAsync(SupervisedProcess process) => EndAsync(TreeOf(process));

    /// <summary>Ends processes no supervisor owns (an earlier run's leftovers): SIGTERM, then SIGKILL after a short grace.</summary>
    public static async Task EndAsync(IReadOnlyList<ProcessEntry> leftovers)
    {
        if (leftovers.Count == 0)
        {
            return;
        }
        ProcessTable.Signal(leftovers, ProcessTable.SigTerm);
        if (!await WaitGoneAsync(leftovers, LeftoverGrace))
        {
            ProcessTable.Signal(leftovers, ProcessTable.SigKill);
            await WaitGoneAsync(leftovers, TimeSpan.FromSeconds(2));
        }
    }

    private static async Task<bool> WaitGoneAsync(IReadOnlyList<ProcessEntry> entries, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (entries.Any(ProcessTable.IsAlive))
        {
            if (watch.Elapsed > timeout)
            {
                return false;
            }
            await Task.Delay(25);
        }
        return true;
    }
}
