// Seam between the dev servers (DevServers/) and the preview providers (Previews/): relay, cloudflared, local.
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Core;

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
