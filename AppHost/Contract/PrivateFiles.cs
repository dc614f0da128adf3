// Owner-only files and folders of the AppHost under $SENTRYVIBE_HOME (docs/security.md): the API token, the runner
// secret, the Postgres password, apphost.json. Compiled into the tests' cluster launcher too (tests/SentryVibe.Testing).
// The runner applies the same rule to what it keeps there (Runner/Core/OwnerOnly.cs); the two share no library that
// may hold file-system code.
using System.Security.Cryptography;

namespace SentryVibe.AppHost.Contract;

public static class PrivateFiles
{
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Looser = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>
    /// Creates the folder as 0700 whatever the umask, or takes read and write away from group and others on one made
    /// looser before. Traverse bits stay: a root AppHost lets its Postgres service user reach the data folder through them.
    /// </summary>
    public static void CreateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }
        if (!Directory.Exists(directory)) Directory.CreateDirectory(directory, OwnerFolder);
        var mode = File.GetUnixFileMode(directory);
        if ((mode & Looser) != 0) File.SetUnixFileMode(directory, mode & ~Looser);
    }

    /// <summary>Writes a file created 0600 (never readable by others, even for a moment), atomically.</summary>
    public static void Write(string path, string content)
    {
        var temp = path + ".tmp-" + Environment.ProcessId;
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerFile;
        using (var writer = new StreamWriter(temp, options)) writer.Write(content);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, OwnerFile); // an existing temp kept its mode
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// A random secret (32 bytes, base64url) kept in <paramref name="path"/>: made on first use, then reused, and
    /// tightened to 0600 if an older version left it looser. Its folder is made 0700 when missing.
    /// </summary>
    public static string Secret(string path, int minimumLength = 32)
    {
        if (File.Exists(path) && File.ReadAllText(path).Trim() is var existing && existing.Length >= minimumLength)
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, OwnerFile);
            return existing;
        }
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory)) CreateDirectory(directory);
        var value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        Write(path, value + "\n");
        return value;
    }
}
