// /api/projects: the caller's projects only; another user's project is the same 404 as a missing one (docs/security.md).
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Apis;

public static class ProjectsApi
{
    public static RouteGroupBuilder MapProjectsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/projects").WithTags("Projects");
        api.MapGet("/", GetProjects);
        api.MapPost("/", CreateProject).Accepts<CreateProjectRequest>("application/json");
        api.MapGet("/{id}", GetProject);
        api.MapDelete("/{id}", DeleteProject);
        api.MapPost("/{id}/messages", SendMessage).Accepts<SendMessageRequest>("application/json");
        api.MapPost("/{id}/dev-server/start", StartDevServer);
        api.MapPost("/{id}/dev-server/stop", StopDevServer);
        api.MapPost("/{id}/cancel", Cancel);
        api.MapGet("/{id}/checkpoints", GetCheckpoints);
        api.MapPost("/{id}/checkpoints/{cid}/restore", RestoreCheckpoint);
        api.MapProjectEvents();
        return api;
    }

    public static async Task<Ok<IReadOnlyList<ProjectView>>> GetProjects(ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        TypedResults.Ok(await projects.ListAsync(user.UserId(), ct));

    public static async Task<Results<Created<ProjectView>, ValidationProblem, ProblemHttpResult>> CreateProject(
        HttpRequest request, ClaimsPrincipal user, ProjectService projects, CancellationToken ct)
    {
        var body = await JsonBody.ReadAsync<CreateProjectRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return await projects.CreateAsync(user.UserId(), body.Value!, ct) switch
        {
            ServiceResult<ProjectView>.Ok ok => TypedResults.Created($"/api/projects/{ok.Value.Id}", ok.Value),
            ServiceResult<ProjectView>.Invalid invalid => ApiResults.Invalid(invalid.Errors),
            ServiceResult<ProjectView>.Conflict conflict => ApiResults.Conflict(conflict.Detail),
            var other => throw new InvalidOperationException($"Unexpected {other}"),
        };
    }

    public static async Task<Results<Ok<ProjectView>, ProblemHttpResult>> GetProject(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        ApiResults.TryParseId(id, out var guid) && await projects.GetAsync(user.UserId(), guid, ct) is { } project
            ? TypedResults.Ok(project)
            : ApiResults.NotFound($"No project {id}.");

    public static async Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> SendMessage(
        string id, HttpRequest request, ClaimsPrincipal user, ProjectService projects, CancellationToken ct)
    {
        if (!ApiResults.TryParseId(id, out var guid)) return ApiResults.NotFound($"No project {id}.");
        var body = await JsonBody.ReadAsync<SendMessageRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return ApiResults.Queued(await projects.SendMessageAsync(user.UserId(), guid, body.Value!, ct));
    }

    public static Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> StartDevServer(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        Queue(id, guid => projects.StartDevServerAsync(user.UserId(), guid, ct));

    public static Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> StopDevServer(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        Queue(id, guid => projects.StopDevServerAsync(user.UserId(), guid, ct));

    public static Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> Cancel(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        Queue(id, guid => projects.CancelAsync(user.UserId(), guid, ct));

    public static Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> DeleteProject(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        Queue(id, guid => projects.DeleteAsync(user.UserId(), guid, ct));

    public static Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> RestoreCheckpoint(string id, string cid, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        Queue(id, guid => projects.RestoreCheckpointAsync(user.UserId(), guid, cid, ct));

    public static async Task<Results<Ok<IReadOnlyList<CheckpointView>>, ProblemHttpResult>> GetCheckpoints(string id, ClaimsPrincipal user, ProjectService projects, CancellationToken ct) =>
        ApiResults.TryParseId(id, out var guid) && await projects.ListCheckpointsAsync(user.UserId(), guid, ct) is { } checkpoints
            ? TypedResults.Ok(checkpoints)
            : ApiResults.NotFound($"No project {id}.");

    private static async Task<Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult>> Queue(
        string id, Func<Guid, Task<ServiceResult<CommandAccepted>>> operation) =>
        ApiResults.TryParseId(id, out var guid)
            ? ApiResults.Queued(await operation(guid))
            : ApiResults.NotFound($"No project {id}.");
}
