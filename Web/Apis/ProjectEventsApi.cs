// GET /api/projects/{id}/events: the log as JSON, or as a server-sent event stream that resumes from Last-Event-ID.
// Only the caller's projects: another user's is the same 404 as a missing one, JSON or stream (docs/security.md).
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using SentryVibe.Protocol;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Extensions;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Apis;

public static class ProjectEventsApi
{
    public const string EventStream = "text/event-stream";
    private static readonly TimeSpan ListenerStartWait = TimeSpan.FromSeconds(5);

    public static RouteHandlerBuilder MapProjectEvents(this RouteGroupBuilder projects) =>
        projects.MapGet("/{id}/events", GetEvents);

    public static async Task<Results<Ok<IReadOnlyList<EventView>>, ValidationProblem, ProblemHttpResult, EmptyHttpResult>> GetEvents(
        string id,
        long? after,
        int? limit,
        HttpContext context,
        ProjectService projects,
        EventNotifications notifications,
        IOptions<SentryVibeOptions> options)
    {
        var ct = context.RequestAborted;
        var userId = context.User.UserId();
        if (!ApiResults.TryParseId(id, out var projectId) || !await projects.ExistsAsync(userId, projectId, ct))
        {
            return ApiResults.NotFound($"No project {id}.");
        }

        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString();
        long from;
        if (!string.IsNullOrEmpty(lastEventId))
        {
            if (!long.TryParse(lastEventId, out from) || from < 0)
            {
                return ApiResults.Invalid(new Dictionary<string, string[]> { ["Last-Event-ID"] = ["Must be an event id."] });
            }
        }
        else
        {
            from = after ?? 0;
        }
        if (from < 0) return ApiResults.Invalid(new Dictionary<string, string[]> { ["after"] = ["Must be zero or more."] });

        if (!WantsStream(context.Request))
        {
            return TypedResults.Ok(await projects.ReadEventsAsync(userId, projectId, from, limit ?? ProjectService.MaxEventPage, ct));
        }

        try
        {
            await StreamAsync(context, userId, projectId, from, projects, notifications, options.Value.SseKeepAlive, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
        }
        return TypedResults.Empty;
    }

    private static bool WantsStream(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals(EventStream, StringComparison.OrdinalIgnoreCase));

    private static async Task StreamAsync(
        HttpContext context, Guid userId, Guid projectId, long from, ProjectService projects, EventNotifications notifications, TimeSpan keepAlive, CancellationToken ct)
    {
        var response = context.Response;
        response.ContentType = EventStream;
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no"; // nginx and friends: do not hold events back
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        // Subscribe before reading the backlog, so an event committed in between wakes us rather than slipping through.
        using var subscription = notifications.Subscribe(projectId);
        await Task.WhenAny(notifications.Listening, Task.Delay(ListenerStartWait, ct));

        await response.WriteAsync("retry: 2000\n\n", ct);
        await response.Body.FlushAsync(ct);

        var last = from;
        while (!ct.IsCancellationRequested)
        {
            // Drain: the data always comes from the log in id order, the notification is only a wake-up.
            IReadOnlyList<EventView> page;
            do
            {
                page = await projects.ReadEventsAsync(userId, projectId, last, ProjectService.MaxEventPage, ct);
                foreach (var e in page)
                {
                    await response.WriteAsync(Format(e), ct);
                    last = e.Id;
                }
                if (page.Count > 0) await response.Body.FlushAsync(ct);
            }
            while (page.Count == ProjectService.MaxEventPage);

            if (!await subscription.WaitAsync(keepAlive, ct))
            {
                // Idle: a comment keeps proxies from closing the stream; the loop re-reads once as a safety net.
                await response.WriteAsync(": keep-alive\n\n", ct);
                await response.Body.FlushAsync(ct);
            }
        }
    }

    /// <summary>One SSE message: <c>id</c> is the event id, <c>event</c> its type, <c>data</c> the same object as the JSON list.</summary>
    public static string Format(EventView e)
    {
        var json = JsonSerializer.Serialize(e, LinkProtocol.JsonOptions);
        return new StringBuilder()
            .Append("id: ").Append(e.Id).Append('\n')
            .Append("event: ").Append(e.Type).Append('\n')
            .Append("data: ").Append(json).Append("\n\n")
            .ToString();
    }
}
