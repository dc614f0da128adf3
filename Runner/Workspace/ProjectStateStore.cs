using SentryVibe.Runner.Core;
using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Workspace;

/// <summary>What the runner must remember about a project to continue it after a restart.</summary>
public sealed record ProjectState(
    Guid ProjectId,
    string Slug,
    string Path,
    string TemplateId,
    string Agent,
    string? SessionId = null,
    int Turns = 0,
    string? TemplateUrl = null,
    string? PreviewId = null,
    DateTimeOffset? CreatedAt = null);

/// <summary>
/// Per-project state as one JSON file per project under <c>$SENTRYVIBE_HOME/projects/</c>, outside the project
/// folder so it never lands in the project's git history. Writes are atomic (temp file + rename).
/// </summary>
public sealed class ProjectStateStore
{
    private readonly string _directory;
    private readonly ConcurrentDictionary<Guid, ProjectState> _cache = new();
    private readonly Lock _writeLock = new();

    public ProjectStateStore(IOptions<WorkspaceOptions> options)
        : this(Path.Join(options.Value.ResolvedHome, "projects"))
    {
    }

    public ProjectStateStore(string directory)
    {
        _directory = directory;
    }

    public ProjectState? Get(Guid projectId)
    {
        if (_cache.TryGetValue(projectId, out var cached))
        {
            return cached;
        }
        var file = FileOf(projectId);
        if (!File.Exists(file))
        {
            return null;
        }
        var state = JsonSerializer.Deserialize<ProjectState>(File.ReadAllText(file), LinkProtocol.JsonOptions);
        return state is null ? null : _cache.GetOrAdd(projectId, state);
    }

    /// <summary>The project (if any) that owns the folder <paramref name="slug"/>.</summary>
    public ProjectState? FindBySlug(string slug)
    {
        if (!Directory.Exists(_directory))
        {
            return null;
        }
        foreach (var file in Directory.EnumerateFiles(_directory, "*.json"))
        {
            if (Guid.TryParse(System.IO.Path.GetFileNameWithoutExtension(file), out var id) && Get(id) is { } state && state.Slug == slug)
            {
                return state;
            }
        }
        return null;
    }

    public void Save(ProjectState state)
    {
        lock (_writeLock)
        {
            OwnerOnly.Directory(_directory);
            var file = FileOf(state.ProjectId);
            var temp = file + ".tmp";
            OwnerOnly.WriteAllText(temp, JsonSerializer.Serialize(state, LinkProtocol.JsonOptions));
            File.Move(temp, file, overwrite: true);
            _cache[state.ProjectId] = state;
        }
    }

    public ProjectState Update(Guid projectId, Func<ProjectState, ProjectState> change)
    {
        lock (_writeLock)
        {
            var current = Get(projectId) ?? throw new InvalidOperationException($"Unknown project {projectId}.");
            var next = change(current);
            Save(next);
            return next;
        }
    }

    public void Delete(Guid projectId)
    {
        lock (_writeLock)
        {
            _cache.TryRemove(projectId, out _);
            File.Delete(FileOf(projectId));
        }
    }

    private string FileOf(Guid projectId) => System.IO.Path.Join(_directory, projectId.ToString("N") + ".json");
}
