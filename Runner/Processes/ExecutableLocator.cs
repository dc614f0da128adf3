// Finds a program on PATH before it is started, so "not installed" is a clear message and not an exit code 127.
namespace SentryVibe.Runner.Processes;

public static class ExecutableLocator
{
    /// <summary>
    /// The full path of <paramref name="name"/>: as given when it contains a folder, else the first match on
    /// <paramref name="pathVariable"/> (default: this process's PATH). Null when there is none.
    /// </summary>
    public static string? Find(string name, string? pathVariable = null)
    {
        if (name.Contains(Path.DirectorySeparatorChar) || name.Contains(Path.AltDirectorySeparatorChar))
        {
            return File.Exists(name) ? Path.GetFullPath(name) : null;
        }

        var extensions = OperatingSystem.IsWindows()
            ? (Environment.GetEnvironmentVariable("PATHEXT") ?? ".EXE;.CMD;.BAT").Split(';', StringSplitOptions.RemoveEmptyEntries).Prepend("")
            : [""];
        var folders = (pathVariable ?? Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var folder in folders)
        {
            foreach (var extension in extensions)
            {
                var candidate = Path.Combine(folder, name + extension);
                if (File.Exists(candidate) && IsExecutable(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    private static bool IsExecutable(string path) =>
        OperatingSystem.IsWindows()
        || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}

/// <summary>A program the runner needs is not installed (or not on PATH).</summary>
public sealed class ExecutableNotFoundException(string name, string? hint = null)
    : FileNotFoundException($"'{name}' was not found on PATH.{(hint is null ? "" : " " + hint)}", name)
{
    public string ExecutableName { get; } = name;
}
