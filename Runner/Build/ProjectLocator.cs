using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

/// <summary>Tells the dev servers where a project lives and how it runs: the project's own package.json first, its template second.</summary>
public sealed class ProjectLocator(ProjectStateStore states) : IProjectLocator
{
    public ProjectLocation? Find(Guid projectId)
    {
        if (states.Get(projectId) is not { } state || !Directory.Exists(state.Path)) return null;
        var manifest = TemplateCatalog.Find(state.TemplateId) ?? ProjectInspector.InferManifest(state.Path, state.TemplateId);
        var metadata = ProjectInspector.Metadata(state.Path, manifest, state.SessionId);
        return new ProjectLocation(projectId, state.Path, metadata.RunCommand, metadata.Framework, manifest.PortArgument, manifest.DefaultPort);
    }
}
