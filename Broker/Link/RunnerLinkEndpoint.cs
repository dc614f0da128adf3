using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

public static class RunnerLinkEndpoint
{
    /// <summary>Maps <c>/runner</c>: bearer check (401 before any upgrade), then the WebSocket link.</summary>
    public static IEndpointConventionBuilder MapRunnerLink(this WebApplication app)
    {
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(20) });
        return app.Map(LinkProtocol.RunnerPath, HandleAsync);
    }

    private static async Task HandleAsync(HttpContext context, RunnerAuthenticator authenticator, LinkServices services)
    {
        if (await authenticator.AuthenticateAsync(context) is not { } credential)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await context.Response.WriteAsync("A valid runner token is required (Authorization: Bearer <token>).");
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("The runner link is a WebSocket.");
            return;
        }

        // No WebSocket keep-alive on the link: its heartbeats (every LinkProtocol.HeartbeatInterval, both ways) keep it
        // alive and prove it. A keep-alive frame every 20 s was a timer per link and one more wake-up per link and period.
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = TimeSpan.Zero });
        await using var connection = new RunnerConnection(socket, services, context.Connection.RemoteIpAddress?.ToString(), credential,
            PreviewScheme(context, services.Options), RunnerAuthenticator.PresentedTokenHash(context));
        await connection.RunAsync(context.RequestAborted);
    }

    /// <summary>
    /// The scheme of the relay URLs the broker builds for this runner's previews: configured, or the way the runner
    /// reached us (TLS here or at the proxy in front), as the runner itself would have picked it.
    /// </summary>
    private static string PreviewScheme(HttpContext context, BrokerOptions options) =>
        options.PreviewScheme is "http" or "https" ? options.PreviewScheme
        : context.Request.IsHttps || string.Equals(context.Request.Headers["X-Forwarded-Proto"], "https", StringComparison.OrdinalIgnoreCase) ? "https"
        : "http";
}
