// Seam between the build (Build/) and the dev-server supervisor (DevServers/).
namespace SentryVibe.Runner.Core;

/// <summary>
/// Starts and stops a project's dev server. Implemented by the dev-server supervisor (DevServers/); the build
/// calls <see cref="StartAsync"/> when a build is ready and asked for it, and <see cref="StopAsync"/> before deleting.
/// </summary>
public interface IDevServerControl
{
    Task StartAsync(Guid projectId, string? previewId, CancellationToken cancellationToken);

    Task StopAsync(Guid projectId, CancellationToken cancellationToken);
}
