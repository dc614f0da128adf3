// Seam between the dev servers (DevServers/) and the build's knowledge of where each project lives (Build/).
namespace SentryVibe.Runner.Core;

/// <summary>Where a project lives on this machine and how it is run; implemented by the build engine.</summary>
public interface IProjectLocator
{
    ProjectLocation? Find(Guid projectId);
}

public sealed record ProjectLocation(Guid ProjectId, string Path, string? RunCommand, string? Framework, string? PortArgument, int? DefaultPort);
