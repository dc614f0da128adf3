using System.Threading.Channels;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Link;

/// <summary>
/// Where the runner's work reports the final outcome of a command it accepted (completed or failed). Sent to the broker
/// whenever connected; kept in memory meanwhile (the events in the outbox are the durable record of what happened).
/// </summary>
public interface ICommandResultReporter
{
    void Report(CommandResult result);
}

public sealed class CommandResultQueue : ICommandResultReporter
{
    private readonly Channel<CommandResult> _results = Channel.CreateUnbounded<CommandResult>();

    public void Report(CommandResult result) => _results.Writer.TryWrite(result);

    internal ChannelReader<CommandResult> Reader => _results.Reader;

    /// <summary>Puts a result back at the end after a failed send.</summary>
    internal void Retry(CommandResult result) => _results.Writer.TryWrite(result);
}
