using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using SentryVibe.Broker.Link;
using SentryVibe.Protocol;
using Yarp.ReverseProxy.Forwarder;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The default preview provider (docs/architecture.md, decision 5): <c>&lt;preview-id&gt;.&lt;preview-domain&gt;</c> is forwarded with
/// YARP over a WebSocket the runner dials for each connection (docs/runner-protocol.md, "Preview relay"), to that
/// project's dev server and nothing else. When the app cannot be shown, a small page says why (runner offline, dev
/// server starting, crashed, stopped).
/// </summary>
public sealed class PreviewRelay
{
    /// <summary>Set on requests forwarded from another replica, so a request is relayed at most once between replicas.</summary>
    public const string RelayedByHeader = "X-SentryVibe-Relayed-By";

    private static readonly HttpRequestOptionsKey<ChannelTarget> TargetKey = new("sentryvibe.preview");

    private readonly IHttpForwarder _forwarder;
    private readonly PreviewTargetStore _targets;
    private readonly RunnerConnectionRegistry _registry;
    private readonly BrokerIdentity _identity;
    private readonly ILogger<PreviewRelay> _logger;
    private readonly HttpMessageInvoker _overLink;
    private readonly HttpMessageInvoker _toReplica;
    private readonly IOptionsMonitor<BrokerOptions> _options;
    private readonly PreviewChannelCounts _channels = new();

    public PreviewRelay(IHttpForwarder forwarder, PreviewTargetStore targets, RunnerConnectionRegistry registry, BrokerIdentity identity,
        IOptionsMonitor<BrokerOptions> options, ILogger<PreviewRelay> logger)
    {
        _forwarder = forwarder;
        _options = options;
        _targets = targets;
        _registry = registry;
        _identity = identity;
        _logger = logger;
        _overLink = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ActivityHeadersPropagator = null,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            // Each pooled "connection" is a socket the runner dials with a ticket and pipes to the dev server's port.
            ConnectCallback = OpenChannelAsync,
        });
        _toReplica = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ActivityHeadersPropagator = null,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        });
    }

    /// <summary>Seconds a refused request is told to wait (the page's own refresh is as long).</summary>
    public const int RetryAfterSeconds = 3;

    /// <summary>Preview channels open through this replica now, all previews together.</summary>
    public int OpenChannels => _channels.Total;

    public bool IsPreviewRequest(HttpContext context, out string previewId) =>
        PreviewHost.TryParse(context.Request.Host.Value, _identity.PreviewDomain, out previewId);

    public async Task HandleAsync(HttpContext context, string previewId)
    {
        var target = await _targets.FindAsync(previewId, context.RequestAborted);
        if (target is null)
        {
            await PreviewPages.WriteAsync(context, StatusCodes.Status404NotFound, "No such preview",
                "This preview address does not belong to any project. Open the preview from the project's page.", refresh: false);
            return;
        }

        var connection = target.RunnerId is null ? null : _registry.Get(target.RunnerId);
        if (connection is not { IsReady: true })
        {
            if (CanForwardToOwner(context, target))
            {
                await ForwardToReplicaAsync(context, target);
                return;
            }
            await PreviewPages.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Runner offline",
                $"The runner that builds \"{target.ProjectName}\" ({target.RunnerId ?? "none assigned"}) is not connected. " +
                "Start it with `sentryvibe-runner run`, and this page turns into your app.");
            return;
        }

        switch (target.DevServerStatus)
        {
            case DevServerStatuses.Starting:
                await PreviewPages.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Starting the dev server",
                    target.Reason == "installing" ? "Installing dependencies (npm install)…" : "Waiting for the dev server to listen…",
                    target.LastLines.TakeLast(5).ToList());
                return;
            case DevServerStatuses.Failed:
                await PreviewPages.WriteAsync(context, StatusCodes.Status502BadGateway, "The dev server crashed",
                    $"It exited{(target.ExitCode is { } code ? $" with code {code}" : "")}. Restart it from the project page; its last lines:",
                    target.LastLines);
                return;
            case not DevServerStatuses.Running:
                await PreviewPages.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Dev server stopped",
                    "The app is not running. Start the dev server from the project page.");
                return;
        }

        // No port here: where the dev server listens is the runner's to know (it pipes the channel there).
        context.Items[TargetKey.Key] = new ChannelTarget(connection, previewId, target.ProjectId);
        var error = await _forwarder.SendAsync(context, $"http://{previewId}.relay/", _overLink, ForwarderRequestConfig.Empty, LinkTransformer.Instance);
        if (error != ForwarderError.None)
        {
            var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
            if (Find<PreviewChannelLimitException>(exception) is { } limit)
            {
                _logger.LogDebug("Preview {PreviewId} refused a connection: {Message}", previewId, limit.Message);
                if (!context.Response.HasStarted)
                {
                    context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    await PreviewPages.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Too many connections",
                        $"{limit.Message} Close some preview tabs or wait a moment; this page tries again.");
                }
                return;
            }
            // The runner's own reason when it gave one (it sits under the HTTP client's "error while sending").
            var message = (Find<PreviewRefusedException>(exception) ?? exception)?.Message;
            _logger.LogInformation("Preview {PreviewId} unreachable: {Error} {Message}", previewId, error, message);
            if (!context.Response.HasStarted)
            {
                await PreviewPages.WriteAsync(context, StatusCodes.Status502BadGateway, "Preview unreachable",
                    $"The runner is connected but the dev server did not answer ({message ?? error.ToString()}).");
            }
        }
    }

    private bool CanForwardToOwner(HttpContext context, PreviewTarget target) =>
        target.RunnerStatus == SentryVibe.Data.RunnerStatuses.Online
        && target.RunnerBrokerId is { Length: > 0 } owner && owner != _identity.Id
        && target.RunnerBrokerAddress is { Length: > 0 }
        && !context.Request.Headers.ContainsKey(RelayedByHeader);

    /// <summary>Scale-out: another replica holds the runner's socket, so the request goes there once, Host kept.</summary>
    private async Task ForwardToReplicaAsync(HttpContext context, PreviewTarget target)
    {
        var error = await _forwarder.SendAsync(context, target.RunnerBrokerAddress!, _toReplica, ForwarderRequestConfig.Empty,
            new ReplicaTransformer(_identity.Id));
        if (error != ForwarderError.None && !context.Response.HasStarted)
        {
            await PreviewPages.WriteAsync(context, StatusCodes.Status502BadGateway, "Runner unreachable",
                $"The broker replica that holds this project's runner ({target.RunnerBrokerId}) did not answer.");
        }
    }

    /// <summary>
    /// Scale-out: a runner's preview socket dial that a load balancer sent here belongs to the replica that issued its
    /// ticket (<see cref="PreviewSocketReplicas"/>); the upgrade goes there once, and any failure is the dial's usual 404.
    /// </summary>
    public async Task ForwardSocketAsync(HttpContext context, string replica)
    {
        var error = await _forwarder.SendAsync(context, replica, _toReplica, ForwarderRequestConfig.Empty, new ReplicaTransformer(_identity.Id));
        if (error != ForwarderError.None)
        {
            _logger.LogInformation("A preview socket for replica {Replica} could not be passed on: {Error}", replica, error);
            if (!context.Response.HasStarted) context.Response.StatusCode = StatusCodes.Status404NotFound;
        }
    }

    /// <summary>
    /// Each new pooled connection of the forwarder is one runner socket, counted against the caps of its preview and of its
    /// runner until it closes; over a cap the request fails with <see cref="PreviewChannelLimitException"/> (503).
    /// </summary>
    private async ValueTask<Stream> OpenChannelAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(TargetKey, out var target))
        {
            throw new HttpRequestException("Preview request without a target.");
        }
        var limit = _options.CurrentValue.MaxPreviewChannelsPerPreview;
        if (!_channels.TryTake(target.PreviewId, limit)) throw new PreviewChannelLimitException("preview", limit);
        var slot = new PreviewChannelSlot(() => _channels.Release(target.PreviewId));
        return await target.Connection.Previews.OpenStreamAsync(target.ProjectId, slot, cancellationToken);
    }

    private static T? Find<T>(Exception? exception) where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found) return found;
        }
        return null;
    }

    private sealed record ChannelTarget(RunnerConnection Connection, string PreviewId, Guid ProjectId);

    /// <summary>
    /// Host and Origin become a plain local request's (<c>localhost</c>, no port: the port is the runner's, which pipes
    /// the channel to it), so Vite and Next accept the request without allowedHosts edits and Next's Server Actions see
    /// Origin and Host agree; redirects to localhost are turned back into the preview's address.
    /// </summary>
    private sealed class LinkTransformer : HttpTransformer
    {
        public static readonly LinkTransformer Instance = new();

        /// <summary>The Host every relayed request carries.</summary>
        public const string LocalHost = "localhost";

        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            var target = (ChannelTarget)httpContext.Items[TargetKey.Key]!;
            proxyRequest.Options.Set(TargetKey, target);
            proxyRequest.Headers.Host = LocalHost;
            if (proxyRequest.Headers.Contains("Origin"))
            {
                proxyRequest.Headers.Remove("Origin");
                proxyRequest.Headers.TryAddWithoutValidation("Origin", $"http://{LocalHost}");
            }
            // The dev server sees a plain local request. A forwarded host that differs from the (rewritten) Origin
            // makes Next.js refuse every Server Action ("x-forwarded-host does not match origin"), so none is sent,
            // including one an edge proxy in front of the broker added.
            proxyRequest.Headers.Remove("X-Forwarded-Host");
            proxyRequest.Headers.Remove("Forwarded");
            proxyRequest.Headers.Remove("X-Forwarded-Proto");
            proxyRequest.Headers.TryAddWithoutValidation("X-Forwarded-Proto", httpContext.Request.Scheme);
        }

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
            if (proxyResponse?.Headers.Location is { IsAbsoluteUri: true } location
                && location.Host is "localhost" or "127.0.0.1")
            {
                var preview = $"{httpContext.Request.Scheme}://{httpContext.Request.Host.Value}";
                httpContext.Response.Headers.Location = preview + location.PathAndQuery;
            }
            return proceed;
        }
    }

    private sealed class ReplicaTransformer(string relayedBy) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            proxyRequest.Headers.Host = httpContext.Request.Host.Value;
            proxyRequest.Headers.TryAddWithoutValidation(RelayedByHeader, relayedBy);
        }
    }
}

public static class PreviewRelayExtensions
{
    public static IHostApplicationBuilder AddPreviewRelay(this IHostApplicationBuilder builder)
    {
        // Registered after Kestrel's own factory, so Kestrel takes this one: relayed downloads arrive in 64 KiB reads.
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>();
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<PreviewTargetStore>();
        builder.Services.AddSingleton<PreviewSocketReplicas>();
        builder.Services.AddSingleton<PreviewRelay>();
        builder.Services.AddSingleton<PreviewMetrics>();
        builder.Services.AddSingleton<IUntracedRequests, PreviewTraffic>();
        return builder;
    }

    /// <summary>Preview hosts are answered before any other route of the broker.</summary>
    public static IApplicationBuilder UsePreviewRelay(this IApplicationBuilder app)
    {
        var relay = app.ApplicationServices.GetRequiredService<PreviewRelay>();
        app.ApplicationServices.GetRequiredService<PreviewMetrics>();
        return app.Use(async (context, next) =>
        {
            if (relay.IsPreviewRequest(context, out var previewId))
            {
                await relay.HandleAsync(context, previewId);
                return;
            }
            await next(context);
        });
    }
}

/// <summary>
/// The relay's traffic is the user's app, not the broker's work: a request on a preview host and a runner's preview
/// socket are not Sentry transactions (<see cref="IUntracedRequests"/>). <see cref="PreviewMetrics"/> measures them.
/// </summary>
internal sealed class PreviewTraffic(PreviewRelay relay) : IUntracedRequests
{
    public bool IsUntraced(HttpContext context) =>
        context.Request.Path.StartsWithSegments(PreviewSocketEndpoint.Prefix) || relay.IsPreviewRequest(context, out _);
}
