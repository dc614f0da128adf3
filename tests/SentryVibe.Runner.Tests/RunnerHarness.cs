using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Checkpoints;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// The runner's build side as Program.cs wires it (AddRunnerBuild), over a temporary workspace and home, with the
/// <see cref="EventCollector"/> as the event sink. Disposing stops every job (and so every agent process) and
/// removes the folders.
/// </summary>
public sealed class RunnerHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private RunnerHarness(string sandbox, ServiceProvider services)
    {
        Sandbox = sandbox;
        _services = services;
    }

    /// <summary>Parent of the workspace and the runner home: nothing may appear here besides those two.</summary>
    public string Sandbox { get; }

    public string WorkspaceRoot => Path.Join(Sandbox, "workspace");

    public string Home => Path.Join(Sandbox, "home");

    public EventCollector Events => _services.GetRequiredService<EventCollector>();

    public ICommandHandler Handler => _services.GetRequiredService<ICommandHandler>();

    public BuildEngine Engine => _services.GetRequiredService<BuildEngine>();

    public CheckpointStore Checkpoints => _services.GetRequiredService<CheckpointStore>();

    public ProjectWorkspace Workspace => _services.GetRequiredService<ProjectWorkspace>();

    public ProjectStateStore States => _services.GetRequiredService<ProjectStateStore>();

    /// <summary>The one record of builds under way (what the heartbeat and status file show).</summary>
    public ActiveBuilds Builds => _services.GetRequiredService<ActiveBuilds>();

    /// <summary>Where the build marks live: what an earlier run of this runner, killed mid-build, left behind.</summary>
    public ActiveBuilds EarlierRun => new(Path.Join(Home, "projects"));

    public static RunnerHarness Create(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null)
    {
        var sandbox = Path.Join(Path.GetTempPath(), "sv-runner-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(sandbox);
        var values = new Dictionary<string, string?>
        {
            ["Workspace:Root"] = Path.Join(sandbox, "workspace"),
            ["Workspace:Home"] = Path.Join(sandbox, "home"),
            ["Build:VerifyBuild"] = "false",
            // Keep the CLI's own files (sessions, settings) out of the real home directory.
            ["Agents:Environment:CLAUDE_CONFIG_DIR"] = Path.Join(sandbox, "home", "claude-config"),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton<EventCollector>();
        services.AddSingleton<IEventSink>(sp => sp.GetRequiredService<EventCollector>());
        services.AddRunnerBuild(configuration);
        configureServices?.Invoke(services);
        return new RunnerHarness(sandbox, services.BuildServiceProvider());
    }

    public async Task<CommandAck> SendAsync(RunnerCommand command)
    {
        var envelope = new CommandEnvelope(Guid.NewGuid(), command, DateTimeOffset.UtcNow);
        var ack = await Handler.HandleAsync(envelope, CancellationToken.None);
        Assert.Equal(envelope.Id, ack.CommandId);
        return ack;
    }

    /// <summary>Sends a command that must be accepted.</summary>
    public async Task AcceptAsync(RunnerCommand command)
    {
        var ack = await SendAsync(command);
        Assert.True(ack.Accepted, $"{command.GetType().Name} was refused: {ack.Error}");
    }

    public string ProjectPath(string slug) => Path.Join(WorkspaceRoot, slug);

    /// <summary>Everything in the sandbox that is neither the workspace nor the home (must stay empty).</summary>
    public IReadOnlyList<string> StrayEntries() =>
        Directory.EnumerateFileSystemEntries(Sandbox)
            .Where(p => p != WorkspaceRoot && p != Home)
            .ToList();

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        try
        {
            FileSystem.DeleteDirectory(Sandbox);
        }
        catch (IOException)
        {
            // A process that just died may still hold a file for a moment; the temp folder is cleaned by the OS.
        }
    }
}
