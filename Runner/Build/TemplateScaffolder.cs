using LibGit2Sharp;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Checkpoints;

namespace SentryVibe.Runner.Build;

/// <summary>A template that cannot be used; the message is for the user.</summary>
public sealed class TemplateException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Puts a template into an empty project folder: a copy of a built-in tree, or a clone of any git URL (https, ssh,
/// file:// or a local path) whose history is dropped. Either way the project then gets its own fresh repository.
/// </summary>
public sealed class TemplateScaffolder(IOptions<BuildOptions> options, CheckpointStore checkpoints)
{
    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase)
    {
        "node_modules", ".git", "dist", ".next", ".astro", "template.json", "package-lock.json",
    };

    /// <summary>Checks a git template URL before anything is written; throws <see cref="TemplateException"/>.</summary>
    public static void ValidateUrl(string url)
    {
        if (TemplateSources.Problem(url) is { } problem)
        {
            throw new TemplateException(problem);
        }
        var trimmed = url.Trim();
        var local = Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) && uri.IsFile ? uri.LocalPath
            : Path.IsPathRooted(trimmed) ? trimmed
            : null;
        if (local is not null && !Directory.Exists(local))
        {
            throw new TemplateException($"The template repository '{trimmed}' does not exist.");
        }
    }

    public string TemplatePath(string templateId) => Path.Join(options.Value.ResolvedTemplatesPath, templateId);

    /// <summary>
    /// Scaffolds into <paramref name="projectPath"/> (missing or empty) and returns the manifest that describes the result.
    /// On failure the folder is removed again.
    /// </summary>
    public async Task<TemplateManifest> ScaffoldAsync(
        string projectPath,
        TemplateManifest? builtIn,
        string? templateUrl,
        Func<string, ValueTask> log,
        CancellationToken cancellationToken)
    {
        if (Directory.Exists(projectPath) && Directory.EnumerateFileSystemEntries(projectPath).Any())
        {
            throw new TemplateException($"The project folder {projectPath} already exists and is not empty.");
        }
        var created = !Directory.Exists(projectPath);
        try
        {
            TemplateManifest manifest;
            if (!string.IsNullOrWhiteSpace(templateUrl))
            {
                ValidateUrl(templateUrl);
                await log($"Cloning template {templateUrl}…");
                await Task.Run(() => Clone(templateUrl.Trim(), projectPath), cancellationToken);
                manifest = builtIn ?? ProjectInspector.InferManifest(projectPath, "git");
                if (File.Exists(Path.Join(projectPath, "template.json")) && builtIn is null)
                {
                    File.Delete(Path.Join(projectPath, "template.json"));
                }
            }
            else
            {
                manifest = builtIn ?? throw new TemplateException("No template given.");
                var source = TemplatePath(manifest.Id);
                if (!Directory.Exists(source))
                {
                    throw new TemplateException($"The files of template '{manifest.Id}' are missing (looked in {source}).");
                }
                await log($"Scaffolding template {manifest.Name} ({manifest.Id})…");
                var count = Copy(source, projectPath, cancellationToken);
                await log($"Copied {count} files.");
            }
            checkpoints.Init(projectPath);
            return manifest;
        }
        catch
        {
            if (created)
            {
                FileSystem.DeleteDirectory(projectPath);
            }
            else if (Directory.Exists(projectPath))
            {
                FileSystem.EmptyDirectory(projectPath);
            }
            throw;
        }
    }

    private static void Clone(string url, string projectPath)
    {
        var local = url.StartsWith("file://", StringComparison.OrdinalIgnoreCase) || Path.IsPathRooted(url);
        var cloneOptions = new CloneOptions { RecurseSubmodules = false, Checkout = true };
        if (!local)
        {
            cloneOptions.FetchOptions.Depth = 1; // shallow clones are not supported by libgit2's local transport
        }
        try
        {
            Repository.Clone(url, projectPath, cloneOptions);
        }
        catch (LibGit2SharpException e)
        {
            throw new TemplateException($"Could not clone the template repository '{url}': {e.Message}", e);
        }
        FileSystem.DeleteDirectory(Path.Join(projectPath, ".git"));
    }

    private static int Copy(string source, string target, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(target);
        var count = 0;
        foreach (var entry in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Skipped.Contains(entry.Name) || entry.LinkTarget is not null)
            {
                continue;
            }
            var destination = Path.Join(target, entry.Name);
            if (entry is DirectoryInfo dir)
            {
                count += Copy(dir.FullName, destination, cancellationToken);
            }
            else
            {
                File.Copy(entry.FullName, destination);
                count++;
            }
        }
        return count;
    }
}

/// <summary>Directory removal that also handles git's read-only object files.</summary>
public static class FileSystem
{
    public static void DeleteDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            return;
        }
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
        {
            info.Delete(); // a link: remove the link, never what it points to
            return;
        }
        EmptyDirectory(path);
        Directory.Delete(path);
    }

    public static void EmptyDirectory(string path)
    {
        foreach (var entry in new DirectoryInfo(path).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo dir && dir.LinkTarget is null)
            {
                EmptyDirectory(dir.FullName);
                dir.Delete();
            }
            else
            {
                // Windows refuses to delete read-only files (git objects); never chmod through a link.
                if (OperatingSystem.IsWindows() && entry.LinkTarget is null)
                {
                    entry.Attributes = FileAttributes.Normal;
                }
                entry.Delete();
            }
        }
    }
}
