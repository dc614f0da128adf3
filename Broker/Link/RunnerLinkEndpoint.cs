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
        if (!await authenticator.AuthenticateAsync(context))
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

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        await using var connection = new RunnerConnection(socket, services, context.Connection.RemoteIpAddress?.ToString());
        await connection.RunAsync(context.RequestAborted);
    }
}
