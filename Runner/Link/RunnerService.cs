using System.Diagnostics;
using Microsoft.Extensions.Logging;
using System.Net.WebSockets;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Previews;

namespace SentryVibe.Runner.Link;

/// <summary>What the broker calls on this runner, one instance per connection (it dials that connection's preview sockets).</summary>
public sealed class RunnerService(
    PreviewDialer dialer,
    PreviewSpares spares,
    CommandJournal journal,
    ICommandHandler handler,
    IPreviewTargets previews,
    ActiveBuilds activeBuilds,
    ILogger logger) : IRunnerService
{
    public static readonly ActivitySource ActivitySource = new("SentryVibe.Runner");

    public async Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken)
    {
        ActivityContext.TryParse(envelope.TraceParent, null, out var parent);
        using var activity = ActivitySource.StartActivity("execute command", ActivityKind.Consumer, parent);
        activity?.SetTag("sentryvibe.command.id", envelope.Id);
        activity?.SetTag("sentryvibe.command.type", envelope.Command?.GetType().Name);
        activity?.SetTag("sentryvibe.project.id", envelope.Command?.ProjectId.ToString());

        if (envelope.Command is null) return new CommandAck(envelope.Id, Accepted: false, Error: "The command has no body.");

        // Recorded before it runs: a crash after this line means the command is taken as done (at most once),
        // which is what makes redelivery safe.
        if (!journal.TryRecord(envelope.Id))
        {
            activity?.SetTag("sentryvibe.command.duplicate", true);
            logger.LogInformation("Command {Id} was delivered again; it already ran", envelope.Id);
            return new CommandAck(envelope.Id, Accepted: true, Duplicate: true);
        }

        try
        {
            return await handler.HandleAsync(envelope, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            logger.LogError(e, "Command {Id} failed", envelope.Id);
            return new CommandAck(envelope.Id, Accepted: false, Error: e.Message);
        }
    }

    public async Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken)
    {
        if (!LinkProtocol.IsPreviewTicket(request?.Ticket))
        {
            return new PreviewChannelAck(false, "Not a preview ticket.");
        }
        var (tcp, refusal) = await PreviewPump.ConnectAsync(previews, request!.ProjectId, cancellationToken);
        if (tcp is null) return new PreviewChannelAck(false, refusal);

        WebSocket socket;
        try
        {
            socket = await dialer.DialAsync(request.Ticket, cancellationToken);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException)
        {
            tcp.Dispose();
            return new PreviewChannelAck(false, $"Could not open the preview socket: {e.Message}");
        }

        _ = PreviewPump.RunAsync(socket, tcp, logger);
        spares.Fill(); // previews are in use: the next connections need not wait for a dial like this one
        return new PreviewChannelAck(true);
    }

    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) =>
        Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow, activeBuilds.Current));
}
