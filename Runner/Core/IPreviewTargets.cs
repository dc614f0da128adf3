// Seam between the link's preview channels (Link/) and the dev servers (DevServers/) they may reach.
namespace SentryVibe.Runner.Core;

/// <summary>What a preview channel may connect to: the dev server port of that project, nothing else.</summary>
public interface IPreviewTargets
{
    /// <summary>The loopback port of the project's running dev server, or null when it has none.</summary>
    int? GetDevServerPort(Guid projectId);
}
