// Every process the runner starts inherits a mark naming this runner and this run of it, so that the next run can
// find and end what a killed runner left behind (agents, dev servers and their children): no exit handler of a
// SIGKILLed runner ever runs, and dev servers live in sessions of their own.
namespace SentryVibe.Runner.Processes;

public static class ProcessLineage
{
    public const string Variable = "SENTRYVIBE_RUNNER_RUN";

    /// <summary>Marks the children this process starts from now on as (owner, a new run id); returns the mark.</summary>
    public static string MarkThisRun(string owner)
    {
        var mark = $"{owner}|{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(Variable, mark);
        return mark;
    }

    /// <summary>Live processes carrying the mark of an earlier run of the same owner (Linux /proc; none elsewhere).</summary>
    public static IReadOnlyList<ProcessEntry> LeftoversOf(string owner, string currentMark)
    {
        var earlier = $"{Variable}={owner}|";
        var current = $"{Variable}={currentMark}";
        var found = new List<ProcessEntry>();
        foreach (var entry in ProcessTable.Snapshot())
        {
            if (entry.Pid == Environment.ProcessId)
            {
                continue;
            }
            string environment;
            try
            {
                environment = File.ReadAllText($"/proc/{entry.Pid}/environ");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or another user's
            }
            if (environment.Split('\0').Any(v => v.StartsWith(earlier, StringComparison.Ordinal) && v != current))
            {
                found.Add(entry);
            }
        }
        return found;
    }
}
