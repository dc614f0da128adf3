using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Nerdbank.Streams;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Previews;

namespace SentryVibe.Runner.Link;

/// <summary>What the broker calls on this runner, one instance per connection (it needs that connection's mux).</summary>
public sealed class RunnerService(
    MultiplexingStream mux,
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
        if (request?.Channel is null || !request.Channel.StartsWith(LinkProtocol.PreviewChannelPrefix, StringComparison.Ordinal))
        {
            return new PreviewChannelAck(false, "Not a preview channel name.");
        }
        // The only place a preview may lead: the dev server this runner started for that project.
        if (previews.GetDevServerPort(request.ProjectId) is not { } port)
        {
            return new PreviewChannelAck(false, "The project has no running dev server on this runner.");
        }

        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
        }
        catch (SocketException e)
        {
            tcp.Dispose();
            return new PreviewChannelAck(false, $"The dev server on port {port} refused the connection: {e.SocketErrorCode}.");
        }

        MultiplexingStream.Channel channel;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            channel = await mux.AcceptChannelAsync(request.Channel, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            tcp.Dispose();
            return new PreviewChannelAck(false, "The preview channel was not offered in time.");
        }

        _ = PreviewPump.RunAsync(channel, tcp, logger);
        return new PreviewChannelAck(true);
    }

    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) =>
        Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow, activeBuilds.Current));
}
