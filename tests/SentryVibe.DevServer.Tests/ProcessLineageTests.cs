using System.Diagnostics;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;

namespace SentryVibe.DevServer.Tests;

/// <summary>What a killed runner left is found by the run mark its processes inherited, and only that is ended.</summary>
public sealed class ProcessLineageTests : IDisposable
{
    private static readonly string Owner = "/tmp/lineage-test-" + Guid.NewGuid().ToString("N");
    private readonly List<Process> _started = [];

    [Fact]
    public async Task Processes_of_an_earlier_run_are_found_and_ended_while_this_run_and_other_runners_are_left_alone()
    {
        var current = $"{Owner}|{Guid.NewGuid():N}";
        var earlier = Sleep($"{Owner}|{Guid.NewGuid():N}");
        var ours = Sleep(current);
        var otherRunner = Sleep($"{Owner}-other|{Guid.NewGuid():N}");
        var unmarked = Sleep(null);

        var leftovers = ProcessLineage.LeftoversOf(Owner, current);

        Assert.Equal([earlier.Id], leftovers.Select(p => p.Pid));
        await ProcessSupervisor.EndAsync(leftovers);
        Assert.True(earlier.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.All([ours, otherRunner, unmarked], p => Assert.False(p.HasExited));
    }

    private Process Sleep(string? mark)
    {
        var start = new ProcessStartInfo("sleep", "120") { UseShellExecute = false };
        start.Environment.Remove(ProcessLineage.Variable);
        if (mark is not null) start.Environment[ProcessLineage.Variable] = mark;
        var process = Process.Start(start)!;
        _started.Add(process);
        return process;
    }

    public void Dispose()
    {
        foreach (var process in _started)
        {
            try { process.Kill(); } catch (InvalidOperationException) { }
            process.Dispose();
        }
    }
}
