// Everything the runner keeps under SENTRYVIBE_HOME (tokens, the outbox of build events, agent sessions, the install
// cache) is its owner's alone: folders 0700 and files 0600 whatever the umask, and folders an older version made
// with looser modes are tightened when used (docs/security.md). The AppHost applies the same rule to its own files
// (AppHost/Contract/SentryVibeHome.cs): the two share no library that may hold file-system code.
namespace SentryVibe.Runner.Core;

public static class OwnerOnly
{
    public const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="path"/> (and missing parents up to the home) as 0700, or tightens it to 0700.</summary>
    public static string Directory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(path);
            return path;
        }
        var missing = new Stack<string>();
        for (var p = Path.GetFullPath(path); !System.IO.Directory.Exists(p); p = Path.GetDirectoryName(p)!)
        {
            missing.Push(p);
            if (Path.GetDirectoryName(p) is null)
            {
                break;
            }
        }
        while (missing.TryPop(out var p))
        {
            System.IO.Directory.CreateDirectory(p, FolderMode); // the umask may clear bits, never add them
        }
        // Read and write go for group and others; traverse bits an existing folder has stay: a root AppHost lets its
        // Postgres service user reach the data folder under the home through them (AppHost/LocalPostgres).
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & Looser) != 0)
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) & ~Looser);
        }
        return path;
    }

    private const UnixFileMode Looser = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>Options that create a file as 0600 (the mode is set again after opening: the umask may not add bits, but the file may exist).</summary>
    public static FileStreamOptions Create(FileMode mode = System.IO.FileMode.Create, FileAccess access = FileAccess.Write, FileShare share = FileShare.Read, int bufferSize = 4096)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share, BufferSize = bufferSize };
        if (!OperatingSystem.IsWindows() && mode != System.IO.FileMode.Open && mode != System.IO.FileMode.Truncate)
        {
            options.UnixCreateMode = FileMode;
        }
        return options;
    }

    /// <summary>Opens (creating as 0600) a file for writing, tightening one an older version left looser.</summary>
    public static FileStream Open(string path, FileMode mode = System.IO.FileMode.Create, FileAccess access = FileAccess.Write, FileShare share = FileShare.Read, int bufferSize = 4096)
    {
        var stream = new FileStream(path, Create(mode, access, share, bufferSize));
        Tighten(path, FileMode);
        return stream;
    }

    public static void WriteAllText(string path, string text)
    {
        using var stream = Open(path);
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }

    public static void WriteAllBytes(string path, byte[] bytes)
    {
        using var stream = Open(path);
        stream.Write(bytes);
    }

    private static void Tighten(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & ~mode) != 0)
        {
            File.SetUnixFileMode(path, mode);
        }
    }
}
