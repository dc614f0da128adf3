// node_modules from earlier successful installs, keyed by everything the install depends on. A new project from the
// same template has the same package.json, so it gets a copy (a fraction of a second) instead of `npm install`
// (~11 s warm, minutes cold): that is most of the time between "Create" and a live preview. Each entry also keeps a
// spare copy of its node_modules, so a restore is one directory rename (milliseconds) instead of a copy (0.5–5 s of
// small files); the spare is refilled in the background after it is taken (docs/operations.md, "Install cache").
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SentryVibe.Runner.DevServers;

public sealed class InstallCache(string root, int maxEntries = 6, ILogger? logger = null)
{
    /// <summary>The files an install reads. A change to any of them is a different entry.</summary>
    private static readonly string[] Inputs =
        ["package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", ".npmrc"];

    /// <summary>Lockfiles an install writes; copied back with node_modules so the project looks freshly installed.</summary>
    private static readonly string[] Lockfiles = ["package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"];

    private const string Modules = "node_modules";
    /// <summary>A whole copy of the entry's node_modules, ready to be renamed into a project.</summary>
    private const string Spare = "node_modules.spare";
    private const string Partial = ".partial-";

    /// <summary>Per entry: taking the spare, and deciding to refill it, happen under this lock.</summary>
    private readonly ConcurrentDictionary<string, object> _locks = new();
    /// <summary>Per entry: the refill of its spare under way, if any.</summary>
    private readonly ConcurrentDictionary<string, Task> _refills = new();

    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    public string Root { get; } = root;

    /// <summary>The entry a project's install would produce: its inputs, the install command and the platform.</summary>
    public static string KeyFor(string projectPath, string installCommand)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string text) => hash.AppendData(Encoding.UTF8.GetBytes(text + "\0"));
        Add(installCommand);
        Add(RuntimeInformation.RuntimeIdentifier);
        foreach (var name in Inputs)
        {
            var path = Path.Combine(projectPath, name);
            Add(name);
            if (File.Exists(path))
            {
                hash.AppendData(File.ReadAllBytes(path));
            }
            Add("");
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
    }

    /// <summary>
    /// Puts the entry's node_modules (and lockfile) into the project: its spare renamed into place when there is one
    /// (and the spare refilled in the background), else a copy. <see cref="InstallRestore.None"/> when there is no
    /// usable entry.
    /// </summary>
    /// <remarks>
    /// Without a spare but with its refill under way — a project created within seconds of the last one — the restore
    /// waits for that refill and takes the spare it puts in: the refill is further along than a copy started now, and
    /// a second copy beside it slows both. Copying beside it made every second of a series of new projects about a
    /// second slower to preview (bench preview on a slow disk: 0.7–1.2 s and 1.8–2.6 s, alternating). If another
    /// restore took that spare first, this one copies.
    /// </remarks>
    public async Task<InstallRestore> TryRestoreAsync(string key, string projectPath)
    {
        var entry = Path.Combine(Root, key);
        var source = Path.Combine(entry, Modules);
        var target = Path.Combine(projectPath, Modules);
        if (!Directory.Exists(source) || Directory.Exists(target))
        {
            return InstallRestore.None;
        }
        var partial = target + Partial + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var how = InstallRestore.Spare;
            if (!TryTakeSpare(key, target))
            {
                // Only when the spare is missing: one that is there but cannot be renamed (another file system) stays so.
                if (_refills.TryGetValue(key, out var refill) && !Directory.Exists(Path.Combine(entry, Spare)))
                {
                    await refill.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // a refill that failed leaves no spare: copy
                }
                if (!TryTakeSpare(key, target))
                {
                    how = InstallRestore.Copy;
                    CopyTree(source, partial);
                    Directory.Move(partial, target);
                }
            }
            foreach (var lockfile in Lockfiles)
            {
                var cached = Path.Combine(entry, lockfile);
                var mine = Path.Combine(projectPath, lockfile);
                if (File.Exists(cached) && !File.Exists(mine))
                {
                    File.Copy(cached, mine);
                }
            }
            Directory.SetLastWriteTimeUtc(entry, DateTime.UtcNow); // most recently used survives pruning
            RefillSpare(key);
            return how;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Could not restore node_modules from the install cache entry {Key}; installing instead", key);
            TryDelete(partial);
            return InstallRestore.None;
        }
    }

    /// <summary>The refill of the entry's spare under way, or a completed task (tests wait on it).</summary>
    public Task SpareRefill(string key) => _refills.TryGetValue(key, out var refill) ? refill : Task.CompletedTask;

    /// <summary>Renames the entry's spare to <paramref name="target"/>; false when there is none (or it is on another file system).</summary>
    private bool TryTakeSpare(string key, string target)
    {
        var spare = Path.Combine(Root, key, Spare);
        lock (_locks.GetOrAdd(key, _ => new object()))
        {
            if (!Directory.Exists(spare))
            {
                return false;
            }
            try
            {
                Directory.Move(spare, target);
                return true;
            }
            catch (IOException ex)
            {
                // A workspace on another file system than the cache: a rename cannot cross it, so copy (as without a spare).
                _logger.LogDebug(ex, "The spare of install cache entry {Key} could not be renamed into the project", key);
                return false;
            }
        }
    }

    /// <summary>Copies the entry's node_modules to its spare in the background, unless a spare is there or on its way.</summary>
    private void RefillSpare(string key)
    {
        var entry = Path.Combine(Root, key);
        lock (_locks.GetOrAdd(key, _ => new object()))
        {
            if (Directory.Exists(Path.Combine(entry, Spare)) || _refills.ContainsKey(key))
            {
                return;
            }
            _refills[key] = Task.Run(() =>
            {
                // Copied beside the entries (Prune skips partial names), so an eviction meanwhile cannot be undone by the copy.
                var partial = entry + Partial + "spare-" + Guid.NewGuid().ToString("N")[..8];
                var copied = false;
                try
                {
                    CopyTree(Path.Combine(entry, Modules), partial);
                    copied = true;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _logger.LogDebug(ex, "The spare of install cache entry {Key} was not copied", key);
                }
                lock (_locks.GetOrAdd(key, _ => new object()))
                {
                    try
                    {
                        // Not if the entry was evicted or forgotten meanwhile.
                        if (copied && Directory.Exists(Path.Combine(entry, Modules)))
                        {
                            // Putting the spare in is no use of the entry: keep its time, which pruning goes by.
                            var used = Directory.GetLastWriteTimeUtc(entry);
                            Directory.Move(partial, Path.Combine(entry, Spare));
                            Directory.SetLastWriteTimeUtc(entry, used);
                        }
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        _logger.LogDebug(ex, "The spare of install cache entry {Key} was not put in place", key);
                    }
                    finally
                    {
                        // In the same locked step as the spare's arrival: a restore that takes it right after must see
                        // no refill under way, or it starts none and the entry stays without a spare.
                        _refills.TryRemove(key, out _);
                    }
                }
                if (Directory.Exists(partial)) TryDelete(partial);
            });
        }
    }

    /// <summary>Keeps a copy of a successful install under <paramref name="key"/> (the key computed before it ran).</summary>
    public void Store(string key, string projectPath)
    {
        var source = Path.Combine(projectPath, Modules);
        var entry = Path.Combine(Root, key);
        if (!Directory.Exists(source) || Directory.Exists(entry))
        {
            return;
        }
        var partial = entry + Partial + Guid.NewGuid().ToString("N")[..8];
        try
        {
            // The entry folder is owner-only (so are its parents under the home); what npm wrote inside keeps npm's modes
            // (executable bits) and is out of other users' reach behind it.
            Core.OwnerOnly.Directory(partial);
            CopyTree(source, Path.Combine(partial, Modules));
            foreach (var lockfile in Lockfiles)
            {
                var written = Path.Combine(projectPath, lockfile);
                if (File.Exists(written))
                {
                    File.Copy(written, Path.Combine(partial, lockfile));
                }
            }
            Directory.Move(partial, entry); // atomic: a reader sees a whole entry or none
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Another install of the same inputs won the race, or the disk is full: the project itself is fine.
            _logger.LogDebug(ex, "Install cache entry {Key} not stored", key);
            TryDelete(partial);
            return;
        }
        RefillSpare(key);
        Prune();
    }

    /// <summary>Drops an entry (and its spare) that produced a dev server which would not start, so the next start installs afresh.</summary>
    public void Forget(string key)
    {
        lock (_locks.GetOrAdd(key, _ => new object()))
        {
            TryDelete(Path.Combine(Root, key));
        }
    }

    /// <summary>A copy under way for this long is one a runner that stopped mid-copy left behind (a copy takes seconds).</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromHours(1);

    /// <summary>
    /// Deletes the half-made entries and spares (<c>&lt;key&gt;.partial-…</c>) a runner killed in the middle of a copy
    /// left behind, each the size of a whole install; copies still under way (newer than <see cref="AbandonedAfter"/>),
    /// here or in another runner sharing the folder, are left alone. Returns how many were removed.
    /// </summary>
    public int RemoveAbandoned()
    {
        if (!Directory.Exists(Root)) return 0;
        var removed = 0;
        foreach (var partial in new DirectoryInfo(Root).EnumerateDirectories($"*{Partial}*"))
        {
            if (DateTime.UtcNow - partial.LastWriteTimeUtc < AbandonedAfter) continue;
            TryDelete(partial.FullName);
            if (!Directory.Exists(partial.FullName)) removed++;
        }
        if (removed > 0) _logger.LogInformation("Install cache: removed {Count} half-made copies left by an earlier run", removed);
        return removed;
    }

    private void Prune()
    {
        var entries = new DirectoryInfo(Root).EnumerateDirectories()
            .Where(d => !d.Name.Contains(Partial, StringComparison.Ordinal))
            .OrderByDescending(d => d.LastWriteTimeUtc)
            .Skip(Math.Max(1, maxEntries));
        foreach (var stale in entries)
        {
            Forget(stale.Name); // with its spare; a refill under way finds the entry gone and leaves nothing
        }
    }

    /// <summary>A recursive copy that keeps symbolic links as links (node_modules/.bin is made of them).</summary>
    private static void CopyTree(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var item in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            var to = Path.Combine(target, item.Name);
            if (item.LinkTarget is { } link)
            {
                if (item is DirectoryInfo)
                {
                    Directory.CreateSymbolicLink(to, link);
                }
                else
                {
                    File.CreateSymbolicLink(to, link);
                }
            }
            else if (item is DirectoryInfo)
            {
                CopyTree(item.FullName, to);
            }
            else
            {
                File.Copy(item.FullName, to); // keeps the executable bit on Unix
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            Build.FileSystem.DeleteDirectory(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>How <see cref="InstallCache.TryRestoreAsync"/> put node_modules into a project, if it did.</summary>
public enum InstallRestore
{
    /// <summary>Not restored: no usable entry, or the project has node_modules already.</summary>
    None,
    /// <summary>The entry's spare renamed into the project.</summary>
    Spare,
    /// <summary>Copied from the entry.</summary>
    Copy,
}
