// Seams for real-process tests: an in-memory event sink, a dictionary project locator, temp folders, and waiting on
// conditions (never on sleeps).
using System.Diagnostics;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Previews;

namespace SentryVibe.DevServer.Tests;

public sealed class EventCollector : IEventSink
{
    private readonly List<(Guid? ProjectId, ProjectEvent Body)> _events = [];
    private readonly object _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ValueTask PublishAsync(Guid? projectId, ProjectEvent body, CancellationToken cancellationToken = default)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _events.Add((projectId, body));
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<ProjectEvent> For(Guid projectId)
    {
        lock (_gate)
        {
            return _events.Where(e => e.ProjectId == projectId).Select(e => e.Body).ToList();
        }
    }

    public IReadOnlyList<T> For<T>(Guid projectId) where T : ProjectEvent => For(projectId).OfType<T>().ToList();

    /// <summary>The first event of type T for the project matching the predicate, waiting up to the timeout.</summary>
    public async Task<T> WaitForAsync<T>(Guid projectId, Func<T, bool>? predicate = null, TimeSpan? timeout = null, int skip = 0)
        where T : ProjectEvent
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                var match = _events.Where(e => e.ProjectId == projectId).Select(e => e.Body).OfType<T>()
                    .Where(e => predicate?.Invoke(e) ?? true).Skip(skip).FirstOrDefault();
                if (match is not null)
                {
                    return match;
                }
                changed = _changed.Task;
            }
            var left = limit - watch.Elapsed;
            if (left <= TimeSpan.Zero || await Task.WhenAny(changed, Task.Delay(left)) != changed)
            {
                throw new TimeoutException(
                    $"No {typeof(T).Name} for project {projectId} within {limit.TotalSeconds:0} s. Events so far:\n" +
                    string.Join('\n', For(projectId).Select(e => e.ToString())));
            }
        }
    }
}

public sealed class TestProjectLocator : IProjectLocator
{
    private readonly Dictionary<Guid, ProjectLocation> _projects = [];

    public ProjectLocation Add(string path, string? runCommand, string? portArgument = null, int? defaultPort = null, string? framework = null)
    {
        var location = new ProjectLocation(Guid.NewGuid(), path, runCommand, framework, portArgument, defaultPort);
        lock (_projects)
        {
            _projects[location.ProjectId] = location;
        }
        return location;
    }

    public ProjectLocation? Find(Guid projectId)
    {
        lock (_projects)
        {
            return _projects.GetValueOrDefault(projectId);
        }
    }
}

public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = Directory.CreateTempSubdirectory("sentryvibe-test-").FullName;
    }

    public string Path { get; }

    public string Write(string relative, string content)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting until {what}.");
            }
            await Task.Delay(25);
        }
    }
}

public static class Processes
{
    /// <summary>The live process and everything below it (and in its process group), from /proc.</summary>
    public static IReadOnlyList<ProcessEntry> TreeOf(int pid) => ProcessTable.TreeAndGroup(pid, pid);

    public static IReadOnlyList<ProcessEntry> StillAlive(IEnumerable<ProcessEntry> entries) =>
        entries.Where(ProcessTable.IsAlive).ToList();

    /// <summary>Kills what a failed test left behind, so one failure does not poison the machine.</summary>
    public static void KillTrees(IEnumerable<int> pids)
    {
        foreach (var pid in pids)
        {
            ProcessTable.Signal(TreeOf(pid), ProcessTable.SigKill);
        }
    }
}

/// <summary>A supervisor and a manager wired like the runner does, plus the seams the tests look through.</summary>
public sealed class DevServerHarness : IAsyncDisposable
{
    public DevServerHarness(IPreviewUrlProvider? provider = null, Action<DevServerOptions>? configure = null, ProcessSupervisor? supervisor = null)
    {
        Supervisor = supervisor ?? new ProcessSupervisor(gracePeriod: TimeSpan.FromSeconds(3));
        var options = new DevServerOptions { PreferDefaultPort = false, StopGracePeriod = TimeSpan.FromSeconds(3) };
        configure?.Invoke(options);
        Provider = provider ?? new LocalPreviewUrlProvider();
        Manager = new DevServerManager(Supervisor, Locator, Events, Provider, Options.Create(options));
    }

    public ProcessSupervisor Supervisor { get; }
    public TestProjectLocator Locator { get; } = new();
    public EventCollector Events { get; } = new();
    public IPreviewUrlProvider Provider { get; }
    public DevServerManager Manager { get; }

    public async ValueTask DisposeAsync()
    {
        var pids = Supervisor.List().Select(p => p.ProcessId).ToList();
        try
        {
            await Supervisor.DisposeAsync();
        }
        finally
        {
            Processes.KillTrees(pids);
        }
    }

    public static PreviewOptions RelayOptions(string domain = "preview.localhost:5080") => new() { RelayDomain = domain };
}
