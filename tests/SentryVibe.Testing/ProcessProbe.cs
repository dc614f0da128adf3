// What the operating system says about the processes a fault test cares about: who listens on a port, who still runs
// in a project folder. Reads /proc, so these tests are Linux-only, as the machines they run on.
using System.Globalization;

namespace SentryVibe.Testing;

public sealed record ProcessInfo(int Pid, string CommandLine, string WorkingDirectory);

public static class ProcessProbe
{
    public static bool Supported => OperatingSystem.IsLinux() && File.Exists("/proc/self/stat");

    /// <summary>The process holding a listening TCP socket on <paramref name="port"/> (IPv4 or IPv6), or null.</summary>
    public static int? ListenerOf(int port)
    {
        var inodes = new HashSet<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ..."; st 0A is LISTEN.
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10 || fields[3] != "0A") continue;
                var local = fields[1];
                if (int.Parse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port)
                {
                    inodes.Add($"socket:[{fields[9]}]");
                }
            }
        }
        if (inodes.Count == 0) return null;

        foreach (var pid in Pids())
        {
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                {
                    if (new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target)) return pid;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone, or not ours to look at.
            }
        }
        return null;
    }

    /// <summary>Every live process whose working directory is <paramref name="folder"/> or below it.</summary>
    public static IReadOnlyList<ProcessInfo> RunningIn(string folder)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        var found = new List<ProcessInfo>();
        foreach (var pid in Pids())
        {
            if (Describe(pid) is { } p && !IsZombie(pid)
                && (p.WorkingDirectory == root || p.WorkingDirectory.StartsWith(root + "/", StringComparison.Ordinal)))
            {
                found.Add(p);
            }
        }
        return found;
    }

    public static ProcessInfo? Describe(int pid)
    {
        try
        {
            var cwd = new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget ?? "";
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').TrimEnd();
            return new ProcessInfo(pid, cmdline, cwd);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The direct children of <paramref name="parent"/>.</summary>
    public static IReadOnlyList<int> ChildrenOf(int parent) =>
        Pids().Where(pid => ParentOf(pid) == parent && !IsZombie(pid)).ToList();

    private static int? ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}") && !IsZombie(pid);

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] is 'Z' or 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static IEnumerable<int> Pids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) yield return pid;
        }
    }
}
