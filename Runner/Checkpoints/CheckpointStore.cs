using LibGit2Sharp;

namespace SentryVibe.Runner.Checkpoints;

public sealed record Checkpoint(string Id, string Message, DateTimeOffset CreatedAt);

/// <summary>
/// Checkpoints are commits in the project's own git repository. History is append-only: a restore writes the old
/// tree as a new commit on top. A new <see cref="Repository"/> per operation; never shared across threads.
/// </summary>
public sealed class CheckpointStore
{
    public const string AuthorName = "SentryVibe Runner";
    public const string AuthorEmail = "runner@sentryvibe.local";
    public const string BranchName = "main";

    /// <summary>Ignored in every project: dependencies, build output, caches, secrets.</summary>
    public static readonly IReadOnlyList<string> DefaultIgnores =
    [
        "node_modules/",
        "dist/",
        "build/",
        ".next/",
        ".astro/",
        ".vite/",
        ".turbo/",
        ".cache/",
        "coverage/",
        "out/",
        "*.log",
        ".DS_Store",
        ".env",
        ".env.local",
        ".env.*.local",
        "next-env.d.ts",
        "*.tsbuildinfo",
    ];

    private static readonly object InitGate = new();

    /// <summary>Makes <paramref name="path"/> a repository (on branch main) with the default .gitignore entries.</summary>
    public void Init(string path)
    {
        lock (InitGate)
        {
            if (!Repository.IsValid(path))
            {
                var gitDir = Repository.Init(path);
                // Unborn HEAD: point it at main (libgit2 would default to master).
                File.WriteAllText(Path.Join(gitDir, "HEAD"), $"ref: refs/heads/{BranchName}\n");
            }
        }
        EnsureGitignore(path);
    }

    public bool HasCheckpoints(string path)
    {
        if (!Repository.IsValid(path))
        {
            return false;
        }
        using var repo = new Repository(path);
        return repo.Head.Tip is not null;
    }

    /// <summary>Commits the whole working tree. Returns null when nothing changed (unless <paramref name="allowEmpty"/>).</summary>
    public Checkpoint? Commit(string path, string message, bool allowEmpty = false)
    {
        using var repo = new Repository(path);
        Commands.Stage(repo, "*");
        var status = repo.RetrieveStatus(new StatusOptions { IncludeUntracked = false });
        var hasChanges = repo.Head.Tip is null || status.IsDirty;
        if (!hasChanges && !allowEmpty)
        {
            return null;
        }
        var signature = Signature();
        var commit = repo.Commit(Trim(message), signature, signature, new CommitOptions { AllowEmptyCommit = true });
        return ToCheckpoint(commit);
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<Checkpoint> List(string path)
    {
        if (!Repository.IsValid(path))
        {
            return [];
        }
        using var repo = new Repository(path);
        if (repo.Head.Tip is null)
        {
            return [];
        }
        return repo.Commits.QueryBy(new CommitFilter { SortBy = CommitSortStrategies.Topological | CommitSortStrategies.Time })
            .Select(ToCheckpoint)
            .ToList();
    }

    /// <summary>
    /// Makes the working tree equal to <paramref name="checkpointId"/>'s tree as a new commit on top of the current one.
    /// Uncommitted changes are committed first so nothing is lost. Ignored files (node_modules) are left alone.
    /// </summary>
    public Checkpoint Restore(string path, string checkpointId)
    {
        Commit(path, "Before restore");
        using var repo = new Repository(path);
        var target = ResolveCommit(repo, checkpointId);
        var head = repo.Head.Tip ?? throw new InvalidOperationException("The project has no checkpoints yet.");
        var signature = Signature();
        var message = $"Restore checkpoint {target.Sha[..7]}: {target.MessageShort}";
        var commit = repo.ObjectDatabase.CreateCommit(signature, signature, Trim(message), target.Tree, [head], prettifyMessage: true);
        // The branch moves forward to the new commit (a descendant of head): history is kept; the hard reset only
        // rewrites tracked files of the working tree and removes those the old tree did not have.
        repo.Reset(ResetMode.Hard, commit);
        return ToCheckpoint(commit);
    }

    /// <summary>The checkpoint, or a <see cref="CheckpointNotFoundException"/> with a message for the user.</summary>
    public Checkpoint Find(string path, string checkpointId)
    {
        if (!Repository.IsValid(path))
        {
            throw new CheckpointNotFoundException("The project has no checkpoints yet.");
        }
        using var repo = new Repository(path);
        return ToCheckpoint(ResolveCommit(repo, checkpointId));
    }

    private static Commit ResolveCommit(Repository repo, string checkpointId)
    {
        if (string.IsNullOrWhiteSpace(checkpointId) || checkpointId.Length < 4 || !checkpointId.All(Uri.IsHexDigit))
        {
            throw new CheckpointNotFoundException($"'{checkpointId}' is not a checkpoint id.");
        }
        var commit = repo.Lookup<Commit>(checkpointId);
        if (commit is null)
        {
            throw new CheckpointNotFoundException($"Checkpoint '{checkpointId}' does not exist in this project.");
        }
        // Only checkpoints of this project's history, not any object that happens to be in the database.
        if (!repo.Commits.QueryBy(new CommitFilter()).Any(c => c.Id == commit.Id))
        {
            throw new CheckpointNotFoundException($"Checkpoint '{checkpointId}' is not part of this project's history.");
        }
        return commit;
    }

    private static void EnsureGitignore(string path)
    {
        var file = Path.Join(path, ".gitignore");
        var existing = File.Exists(file) ? File.ReadAllLines(file) : [];
        var have = existing.Select(l => l.Trim()).ToHashSet(StringComparer.Ordinal);
        var missing = DefaultIgnores.Where(i => !have.Contains(i) && !have.Contains(i.TrimEnd('/')) && !have.Contains("/" + i)).ToList();
        if (missing.Count == 0)
        {
            return;
        }
        var lines = existing.ToList();
        if (lines.Count > 0)
        {
            lines.Add("");
        }
        lines.Add("# Added by SentryVibe");
        lines.AddRange(missing);
        File.WriteAllLines(file, lines);
    }

    private static Signature Signature() => new(AuthorName, AuthorEmail, DateTimeOffset.Now);

    private static Checkpoint ToCheckpoint(Commit commit) => new(commit.Sha, commit.MessageShort, commit.Author.When);

    private static string Trim(string message)
    {
        var oneLine = message.ReplaceLineEndings(" ").Trim();
        return oneLine.Length > 200 ? oneLine[..199] + "…" : oneLine;
    }
}

public sealed class CheckpointNotFoundException(string message) : Exception(message);
