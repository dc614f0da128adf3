// The operating system's view of processes: who descends from whom, who is in which process group, and signals.
// Linux reads /proc; elsewhere only what System.Diagnostics.Process offers.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace SentryVibe.Runner.Processes;

/// <summary>One row of the process table. <see cref="StartTicks"/> tells a reused pid from the original.</summary>
public sealed record ProcessEntry(int Pid, int ParentPid, int ProcessGroup, char State, ulong StartTicks)
{
    /// <summary>A zombie has exited and only waits to be reaped; it holds no port, no file, no CPU.</summary>
    public bool IsZombie => State is 'Z' or 'X';
}

public static class ProcessTable
{
    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    public static bool HasProcFs { get; } = OperatingSystem.IsLinux() && File.Exists("/proc/self/stat");

    /// <summary>The running process with that pid, or null when it is gone (zombies count as gone).</summary>
    public static ProcessEntry? Get(int pid)
    {
        if (HasProcFs)
        {
            var entry = ReadStat(pid);
            return entry is { IsZombie: false } ? entry : null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : new ProcessEntry(pid, 0, 0, 'R', 0);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    public static bool IsAlive(ProcessEntry entry)
    {
        var now = Get(entry.Pid);
        return now is not null && (entry.StartTicks == 0 || now.StartTicks == entry.StartTicks);
    }

    /// <summary>Every live process, read once from /proc (empty where there is no /proc).</summary>
    public static IReadOnlyList<ProcessEntry> Snapshot()
    {
        if (!HasProcFs)
        {
            return [];
        }

        var list = new List<ProcessEntry>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ReadStat(pid) is { IsZombie: false } entry)
            {
                list.Add(entry);
            }
        }
        return list;
    }

    /// <summary>
    /// The process and everything below it, plus every member of its process group (which catches grandchildren
    /// whose parent already exited and who were re-parented away from the tree).
    /// </summary>
    public static IReadOnlyList<ProcessEntry> TreeAndGroup(int rootPid, int? processGroup)
    {
        var all = Snapshot();
        var byParent = all.ToLookup(p => p.ParentPid);
        var result = new Dictionary<int, ProcessEntry>();
        var queue = new Queue<int>();
        if (all.FirstOrDefault(p => p.Pid == rootPid) is { } root)
        {
            result[root.Pid] = root;
            queue.Enqueue(root.Pid);
        }
        foreach (var member in all.Where(p => processGroup is > 0 && p.ProcessGroup == processGroup))
        {
            if (result.TryAdd(member.Pid, member))
            {
                queue.Enqueue(member.Pid);
            }
        }
        while (queue.TryDequeue(out var pid))
        {
            foreach (var child in byParent[pid])
            {
                if (result.TryAdd(child.Pid, child))
                {
                    queue.Enqueue(child.Pid);
                }
            }
        }
        return result.Values.ToList();
    }

    /// <summary>
    /// Whether one of these processes holds a listening TCP socket on the port (IPv4 or IPv6), read from
    /// /proc/net/tcp{,6} and the processes' open file descriptors; null where there is no /proc to tell.
    /// </summary>
    public static bool? Listens(IEnumerable<ProcessEntry> processes, int port)
    {
        if (!HasProcFs)
        {
            return null;
        }
        var sockets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(table);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // no IPv6, say
            }
            // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."; st 0A is LISTEN.
            foreach (var line in lines.Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10 || fields[3] != "0A")
                {
                    continue;
                }
                var colon = fields[1].LastIndexOf(':');
                if (colon > 0
                    && int.TryParse(fields[1].AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var local)
                    && local == port)
                {
                    sockets.Add($"socket:[{fields[9]}]");
                }
            }
        }
        if (sockets.Count == 0)
        {
            return false;
        }
        foreach (var process in processes)
        {
            IEnumerable<string> descriptors;
            try
            {
                descriptors = Directory.GetFiles($"/proc/{process.Pid}/fd");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or another user's
            }
            foreach (var descriptor in descriptors)
            {
                string? target;
                try
                {
                    target = new FileInfo(descriptor).LinkTarget;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                if (target is not null && sockets.Contains(target))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>Sends a signal; false when the process is gone or the platform has no signals.</summary>
    public static bool Signal(int pid, int signal)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }
        try
        {
            return sys_kill(pid, signal) == 0;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Signals every entry that is still the same process as when it was listed.</summary>
    public static void Signal(IEnumerable<ProcessEntry> entries, int signal)
    {
        foreach (var entry in entries)
        {
            if (IsAlive(entry))
            {
                Signal(entry.Pid, signal);
            }
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code for this signature; kill(2) is trivially blittable.
    private static extern int sys_kill(int pid, int sig);
#pragma warning restore SYSLIB1054

    private static ProcessEntry? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
        //  priority nice threads itrealvalue starttime ..." — comm may hold spaces and parentheses, so split after the last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }
        var fields = text[(close + 2)..].Split(' ');
        if (fields.Length < 20)
        {
            return null;
        }
        return new ProcessEntry(
            pid,
            int.Parse(fields[1], CultureInfo.InvariantCulture),
            int.Parse(fields[2], CultureInfo.InvariantCulture),
            fields[0][0],
            ulong.Parse(fields[19], CultureInfo.InvariantCulture));
    }
}
