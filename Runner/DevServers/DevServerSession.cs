// One start of a project's dev server: its plan, processes, ports, last lines and the events it has to say.
using System.Threading.Channels;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

internal sealed class DevServerSession(Guid projectId, string? previewId, ProjectLocation location, DevServerPlan plan, DevServerOptions options)
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
