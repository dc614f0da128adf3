// Empty files named <project>.<kind> that say "this project has X under way". A runner that is killed cannot say
// that X ended; the next run finds the marks and reports it (builds "interrupted", dev servers "stopped").
namespace SentryVibe.Runner.Core;

public sealed class ProjectMarks(string directory, string kind)
{
    private string Extension => "." + kind;

    public void Set(Guid projectId)
    {
        OwnerOnly.Directory(directory);
        OwnerOnly.WriteAllBytes(PathOf(projectId), []);
    }

    public void Clear(Guid projectId) => File.Delete(PathOf(projectId));

    /// <summary>The projects marked now (left by an earlier run, at start-up).</summary>
    public IReadOnlyList<Guid> List() =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, "*" + Extension)
                .Select(f => Guid.TryParse(Path.GetFileNameWithoutExtension(f), out var id) ? id : Guid.Empty)
                .Where(id => id != Guid.Empty)
                .ToList()
            : [];

    private string PathOf(Guid projectId) => Path.Join(directory, projectId.ToString("N") + Extension);
}
