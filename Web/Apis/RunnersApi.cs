using Microsoft.AspNetCore.Http.HttpResults;
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

    public static async Task<Ok<IReadOnlyList<RunnerView>>> GetRunners(RunnerDirectory runners, CancellationToken ct) =>
        TypedResults.Ok(await runners.ListAsync(ct));

    public static async Task<Ok<IReadOnlyList<RunnerTokenView>>> GetTokens(RunnerDirectory runners, CancellationToken ct) =>
        TypedResults.Ok(await runners.ListTokensAsync(ct));

    public static async Task<Results<Created<CreatedRunnerToken>, ValidationProblem, ProblemHttpResult>> CreateToken(
        HttpRequest request, RunnerDirectory runners, CancellationToken ct)
    {
        var body = await JsonBody.ReadAsync<CreateRunnerTokenRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return await runners.CreateTokenAsync(body.Value!, ct) switch
        {
            ServiceResult<CreatedRunnerToken>.Ok ok => TypedResults.Created($"/api/runners/tokens/{ok.Value.Id}", ok.Value),
            ServiceResult<CreatedRunnerToken>.Invalid invalid => ApiResults.Invalid(invalid.Errors),
            _ => throw new InvalidOperationException(),
        };
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeToken(string id, RunnerDirectory runners, CancellationToken ct) =>
        ApiResults.TryParseId(id, out var guid) && await runners.RevokeTokenAsync(guid, ct)
            ? TypedResults.NoContent()
            : ApiResults.NotFound($"No runner token {id}.");
}
