using Microsoft.Extensions.Options;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Workspace;

/// <summary>
/// The workspace root and the only way to turn names and agent-supplied paths into file-system paths:
/// every path is resolved inside the root (symlinks followed) or refused with a <see cref="WorkspaceException"/>.
/// </summary>
public sealed class ProjectWorkspace
{
    public ProjectWorkspace(IOptions<WorkspaceOptions> options)
        : this(options.Value.ResolvedRoot)
    {
    }

    public ProjectWorkspace(string root)
    {
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
    }

    public string Root { get; }

    /// <summary>Creates the root when missing.</summary>
    public void EnsureRoot() => Directory.CreateDirectory(Root);

    /// <summary>The folder of a project; the slug must be valid (so it can never name anything outside the root).</summary>
    public string ProjectPath(string slug)
    {
        if (Slugs.Problem(slug) is { } problem)
        {
            throw new WorkspaceException(problem);
        }
        var path = Path.Join(Root, slug);
        EnsureInside(path, slug);
        return path;
    }

    /// <summary>
    /// Resolves <paramref name="relativePath"/> (as an agent or a user gives it) inside <paramref name="projectPath"/>.
    /// Absolute paths are accepted only when they already point inside the project.
    /// </summary>
    public string Resolve(string projectPath, string relativePath)
    {
        if (string.IsNullOrWhiteSpace(relativePath))
        {
            throw new WorkspaceException("The path is empty.");
        }
        if (relativePath.Contains('\0'))
        {
            throw new WorkspaceException("The path contains a NUL character.");
        }
        var project = Path.TrimEndingDirectorySeparator(Path.GetFullPath(projectPath));
        EnsureInside(project, projectPath);

        var full = Path.GetFullPath(Path.IsPathRooted(relativePath) ? relativePath : Path.Join(project, relativePath));
        if (!IsInside(project, full) && full != project)
        {
            throw new WorkspaceException($"The path '{relativePath}' is outside the project folder.");
        }
        var real = RealPath(full);
        var realProject = RealPath(project);
        if (!IsInside(realProject, real) && real != realProject)
        {
            throw new WorkspaceException($"The path '{relativePath}' leads outside the project folder through a symbolic link.");
        }
        return full;
    }

    /// <summary>Whether <paramref name="path"/> is the project folder itself or inside it, after symlinks.</summary>
    public bool Contains(string path)
    {
        var full = Path.GetFullPath(path);
        return IsInside(RealPath(Root), RealPath(full));
    }

    private void EnsureInside(string path, string shownAs)
    {
        var full = Path.GetFullPath(path);
        if (!IsInside(Root, full))
        {
            throw new WorkspaceException($"'{shownAs}' is outside the workspace {Root}.");
        }
        var realRoot = RealPath(Root);
        var real = RealPath(full);
        if (!IsInside(realRoot, real))
        {
            throw new WorkspaceException($"'{shownAs}' leads outside the workspace {Root} through a symbolic link.");
        }
    }

    private static bool IsInside(string parent, string child)
    {
        var prefix = parent.EndsWith(Path.DirectorySeparatorChar) ? parent : parent + Path.DirectorySeparatorChar;
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return child.StartsWith(prefix, comparison);
    }

    /// <summary>
    /// The path with every existing symbolic link along it resolved (like realpath), the not-yet-existing tail kept as is.
    /// </summary>
    internal static string RealPath(string fullPath)
    {
        var root = Path.GetPathRoot(fullPath)!;
        var parts = fullPath[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = root;
        for (var i = 0; i < parts.Length; i++)
        {
            var next = Path.Join(current, parts[i]);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (!info.Exists && info.LinkTarget is null)
            {
                // Nothing further exists: the rest cannot hide a link.
                return Path.Join([next, .. parts[(i + 1)..]]);
            }
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                next = target is null ? next : Path.GetFullPath(target.FullName);
                next = RealPath(next);
            }
            current = next;
        }
        return current;
    }
}
