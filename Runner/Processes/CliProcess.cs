using System.Text;
using CliWrap;
using CliWrap.EventStream;

namespace SentryVibe.Runner.Processes;

/// <summary>How a process run ended.</summary>
public sealed record ProcessOutcome(int? ExitCode, bool TimedOut, bool Cancelled, IReadOnlyList<string> StderrTail);

/// <summary>
/// Runs a CliWrap command to its end, line by line, with a timeout (agents, the build check, the agent's shell;
/// long-running processes belong to <see cref="ProcessSupervisor"/>). Cancellation is graceful first (SIGINT), then after
/// <see cref="GracePeriod"/> the whole process tree is killed.
/// </summary>
public static class CliProcess
{
    public static readonly TimeSpan GracePeriod = TimeSpan.FromSeconds(3);

    public static async Task<ProcessOutcome> RunAsync(
        Command command,
        Func<string, ValueTask> onStdout,
        Func<string, ValueTask>? onStderr,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var graceful = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        graceful.CancelAfter(timeout);
        using var forceful = new CancellationTokenSource();
        await using var escalate = graceful.Token.Register(() => forceful.CancelAfter(GracePeriod));
        var stderr = new Queue<string>();
        try
        {
            await foreach (var e in command.WithValidation(CommandResultValidation.None)
                .ListenAsync(Encoding.UTF8, Encoding.UTF8, forceful.Token, graceful.Token))
            {
                switch (e)
                {
                    case StandardOutputCommandEvent o:
                        await onStdout(o.Text);
                        break;
                    case StandardErrorCommandEvent err:
                        stderr.Enqueue(err.Text);
                        if (stderr.Count > 40)
                        {
                            stderr.Dequeue();
                        }
                        if (onStderr is not null)
                        {
                            await onStderr(err.Text);
                        }
                        break;
                    case ExitedCommandEvent exited:
                        return new ProcessOutcome(exited.ExitCode, false, false, [.. stderr]);
                }
            }
            return new ProcessOutcome(null, false, false, [.. stderr]);
        }
        catch (OperationCanceledException) when (graceful.IsCancellationRequested)
        {
            return new ProcessOutcome(null, !cancellationToken.IsCancellationRequested, cancellationToken.IsCancellationRequested, [.. stderr]);
        }
    }
}
