using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Link;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

/// <summary>
/// Marks the processes this run of the runner starts and, on start, ends those an earlier run left when it was killed
/// or crashed, so a restarted runner does not share the machine with agents and dev servers nobody owns any more.
/// The mark is an environment variable of the process: one runner per process, as `sentryvibe-runner run` is.
/// </summary>
public sealed class PreviousRunSweeper : IHostedService
{
    private readonly string _owner;
    private readonly string _mark;
    private readonly ILogger<PreviousRunSweeper> _logger;

    public PreviousRunSweeper(IOptions<RunnerOptions> options, ILogger<PreviousRunSweeper> logger)
    {
        _logger = logger;
        _owner = options.Value.StateDirectory;
        // In the constructor: the host creates every hosted service before it starts any, so no child starts unmarked.
        _mark = ProcessLineage.MarkThisRun(_owner);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var leftovers = ProcessLineage.LeftoversOf(_owner, _mark);
        if (leftovers.Count == 0)
        {
            return;
        }
        _logger.LogWarning("Ending {Count} process(es) an earlier run of this runner left behind: {Pids}",
            leftovers.Count, string.Join(", ", leftovers.Select(p => p.Pid)));
        await ProcessSupervisor.EndAsync(leftovers);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
