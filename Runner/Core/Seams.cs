// The seams between the runner's link (Link/) and its work (Build/, DevServers/): the link delivers commands
// and carries events; the work never sees a socket.
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Core;

/// <summary>Where the runner's work reports progress. Implemented by the durable outbox of the link.</summary>
public interface IEventSink
{
    /// <summary>Appends the event to the durable outbox (it survives a crash once this returns) and wakes the sender.</summary>
    ValueTask PublishAsync(Guid? projectId, ProjectEvent body, CancellationToken cancellationToken = default);
}

/// <summary>
/// Carries out commands. Returns once the command is accepted (or refused with a reason the user sees);
/// long work goes on in the background and reports through <see cref="IEventSink"/>.
/// The link has already made sure an id runs at most once.
/// </summary>
public interface ICommandHandler
{
    Task<CommandAck> HandleAsync(CommandEnvelope envelope, CancellationToken cancellationToken);
}

/// <summary>What a preview channel may connect to: the dev server port of that project, nothing else.</summary>
public interface IPreviewTargets
{
    /// <summary>The loopback port of the project's running dev server, or null when it has none.</summary>
    int? GetDevServerPort(Guid projectId);
}

/// <summary>Builds the public preview URL of a project's dev server for the configured provider.</summary>
public interface IPreviewUrlProvider
{
    /// <summary>Provider name reported in <see cref="PortDetected.Provider"/>: relay, cloudflared or local.</summary>
    string Name { get; }

    /// <summary>Called when the dev server's port is known; returns the URL the UI should open.</summary>
    Task<string> StartAsync(Guid projectId, string? previewId, int port, CancellationToken cancellationToken);

    /// <summary>Called when the dev server stops.</summary>
    Task StopAsync(Guid projectId);
}

/// <summary>
/// Starts and stops a project's dev server. Implemented by the dev-server supervisor (DevServers/); the build
/// calls <see cref="StartAsync"/> when a build is ready and asked for it, and <see cref="StopAsync"/> before deleting.
/// </summary>
public interface IDevServerControl
{
    Task StartAsync(Guid projectId, string? previewId, CancellationToken cancellationToken);

    Task StopAsync(Guid projectId, CancellationToken cancellationToken);
}

/// <summary>Where a project lives on this machine and how it is run; implemented by the build engine.</summary>
public interface IProjectLocator
{
    ProjectLocation? Find(Guid projectId);
}

public sealed record ProjectLocation(Guid ProjectId, string Path, string? RunCommand, string? Framework, string? PortArgument, int? DefaultPort);

/// <summary>What the connected broker told the runner about previews (known after its Hello reply).</summary>
public interface IBrokerInfo
{
    /// <summary>The broker's preview domain (e.g. <c>preview.localhost:5090</c>), or null before the first Hello.</summary>
    string? PreviewDomain { get; }

    /// <summary>http, or https when the broker is reached over wss.</summary>
    string PreviewScheme { get; }
}
