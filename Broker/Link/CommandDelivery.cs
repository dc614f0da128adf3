using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using SentryVibe.Protocol;
using StreamJsonRpc;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Delivers one link's queued commands to its runner: claims the next command from <see cref="CommandStore"/>, calls
/// <see cref="IRunnerService.ExecuteAsync"/> and records the ack, until none is left; then waits for a wake: the
/// <see cref="CommandDispatcher"/> hears a NOTIFY, or finds the runner with work pending in its safety net (one query
/// for all held runners, after its listener reconnects and after 30 s without a notification). A command not acked in
/// time stays "delivered" and goes again on the runner's next link, where its journal answers a duplicate
/// (docs/runner-protocol.md).
/// </summary>
/// <remarks>
/// The loop does not poll the database itself: a poll of its own every 30 s was a query a second for every 30 idle
/// links, and most of what a broker holding a thousand of them allocated (docs/architecture.md, decision 4).
/// </remarks>
internal sealed class CommandDelivery(RunnerConnection connection, LinkServices services)
{
    private readonly ILogger _logger = services.Loggers.CreateLogger<RunnerConnection>();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private Task _loop = Task.CompletedTask;

    /// <summary>
    /// Starts the loop for the runner whose Hello was just accepted; once <paramref name="closed"/> is cancelled it ends at
    /// its next wake (<see cref="StoppedAsync"/> gives it one).
    /// </summary>
    public void Start(string runnerId, CancellationToken closed)
    {
        _loop = Task.Run(() => LoopAsync(runnerId, closed));
        Wake();
    }

    /// <summary>A command was queued for this runner.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>Wakes the loop to see the link closed and waits (at most <paramref name="timeout"/>) for it to end.</summary>
    public async Task StoppedAsync(TimeSpan timeout)
    {
        Wake();
        try { await _loop.WaitAsync(timeout); } catch (Exception) { }
    }

    private async Task LoopAsync(string runnerId, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                while (await services.Commands.ClaimNextAsync(runnerId, services.Identity.Id, connection.ConnectedAt, ct) is { } claimed)
                {
                    await DeliverAsync(runnerId, claimed, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is ConnectionLostException or ObjectDisposedException)
            {
                return;
            }
            catch (Exception e) when (DatabaseFailures.Is(e))
            {
                _logger.LogWarning("Command delivery to {Runner} paused: {Message}", runnerId, e.Message);
                try { await Task.Delay(TimeSpan.FromSeconds(1), ct); } catch (OperationCanceledException) { return; }
                continue;
            }

            // No token: a wait without one reuses the channel's own reader and registers nothing on the link's close,
            // which wakes it instead (StoppedAsync); an idle link waits here for hours.
            await _wake.Reader.ReadAsync();
        }
    }

    private async Task DeliverAsync(string runnerId, ClaimedCommand claimed, CancellationToken ct)
    {
        RunnerCommand? command;
        try
        {
            command = JsonSerializer.Deserialize<RunnerCommand>(claimed.Payload, LinkProtocol.JsonOptions);
        }
        catch (JsonException e)
        {
            command = null;
            _logger.LogWarning("Command {Id} has an unreadable payload: {Message}", claimed.Id, e.Message);
        }
        if (command is null)
        {
            await services.Commands.MarkFailedAsync(claimed.Id, "The command's payload could not be read.", CancellationToken.None);
            return;
        }

        ActivityContext.TryParse(claimed.TraceParent, null, out var parent);
        using var activity = LinkServices.ActivitySource.StartActivity("deliver command", ActivityKind.Producer, parent);
        activity?.SetTag("sentryvibe.command.id", claimed.Id);
        activity?.SetTag("sentryvibe.command.attempt", claimed.Attempts);
        activity?.SetTag("sentryvibe.runner.id", runnerId);

        var envelope = new CommandEnvelope(claimed.Id, command, claimed.CreatedAt, activity?.Id ?? claimed.TraceParent);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(services.Options.CommandAckTimeout);
        CommandAck ack;
        try
        {
            ack = await connection.Runner!.ExecuteAsync(envelope, timeout.Token);
        }
        catch (RemoteInvocationException e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            await services.Commands.MarkFailedAsync(claimed.Id, $"The runner failed the command: {e.Message}", CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Left "delivered": the runner's next connection gets it again and its journal answers a duplicate.
            activity?.SetStatus(ActivityStatusCode.Error, "no ack in time");
            _logger.LogWarning("Runner {Runner} did not ack command {Id} in time", runnerId, claimed.Id);
            return;
        }

        activity?.SetTag("sentryvibe.command.duplicate", ack.Duplicate);
        await services.Commands.MarkAckedAsync(claimed.Id, ack, CancellationToken.None);
    }
}
