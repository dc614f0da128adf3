// /api/runners: the caller's runners and runner tokens only; another user's token is the same 404 as a missing one.
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Apis;

public static class RunnersApi
{
    public static RouteGroupBuilder MapRunnersApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/runners").WithTags("Runners");
        api.MapGet("/", GetRunners);
        api.MapGet("/tokens", GetTokens);
        api.MapPost("/tokens", CreateToken).Accepts<CreateRunnerTokenRequest>("application/json");
        api.MapDelete("/tokens/{id}", RevokeToken);
        return api;
    }

    public static async Task<Ok<IReadOnlyList<RunnerView>>> GetRunners(ClaimsPrincipal user, RunnerDirectory runners, CancellationToken ct) =>
        TypedResults.Ok(await runners.ListAsync(user.UserId(), ct));

    public static async Task<Ok<IReadOnlyList<RunnerTokenView>>> GetTokens(ClaimsPrincipal user, RunnerDirectory runners, CancellationToken ct) =>
        TypedResults.Ok(await runners.ListTokensAsync(user.UserId(), ct));

    public static async Task<Results<Created<CreatedRunnerToken>, ValidationProblem, ProblemHttpResult>> CreateToken(
        HttpRequest request, ClaimsPrincipal user, RunnerDirectory runners, CancellationToken ct)
    {
        var body = await JsonBody.ReadAsync<CreateRunnerTokenRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return await runners.CreateTokenAsync(user.UserId(), body.Value!, ct) switch
        {
            ServiceResult<CreatedRunnerToken>.Ok ok => TypedResults.Created($"/api/runners/tokens/{ok.Value.Id}", ok.Value),
            ServiceResult<CreatedRunnerToken>.Invalid invalid => ApiResults.Invalid(invalid.Errors),
            _ => throw new InvalidOperationException(),
        };
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeToken(string id, ClaimsPrincipal user, RunnerDirectory runners, CancellationToken ct) =>
        ApiResults.TryParseId(id, out var guid) && await runners.RevokeTokenAsync(user.UserId(), guid, ct)
            ? TypedResults.NoContent()
            : ApiResults.NotFound($"No runner token {id}.");
}
