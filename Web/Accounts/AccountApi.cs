// /api/account: who am I, and my personal tokens (docs/accounts.md).
using Microsoft.AspNetCore.Http.HttpResults;
using System.Security.Claims;
using SentryVibe.Web.Apis;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Accounts;

public sealed record AccountView(Guid Id, string Name, bool IsOwner);

public static class AccountApi
{
    public static RouteGroupBuilder MapAccountApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/account").WithTags("Account");
        api.MapGet("/", GetAccount);
        api.MapGet("/tokens", GetTokens);
        api.MapPost("/tokens", CreateToken).Accepts<CreatePersonalTokenRequest>("application/json");
        api.MapDelete("/tokens/{id}", RevokeToken);
        return api;
    }

    public static Ok<AccountView> GetAccount(ClaimsPrincipal user) =>
        TypedResults.Ok(new AccountView(user.UserId(), user.Identity?.Name ?? "", user.IsOwner()));

    public static async Task<Ok<IReadOnlyList<PersonalTokenView>>> GetTokens(ClaimsPrincipal user, PersonalTokens tokens, CancellationToken ct) =>
        TypedResults.Ok(await tokens.ListAsync(user.UserId(), ct));

    public static async Task<Results<Created<CreatedPersonalToken>, ValidationProblem, ProblemHttpResult>> CreateToken(
        HttpRequest request, ClaimsPrincipal user, PersonalTokens tokens, CancellationToken ct)
    {
        var body = await JsonBody.ReadAsync<CreatePersonalTokenRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return await tokens.CreateAsync(user.UserId(), body.Value!, ct) switch
        {
            ServiceResult<CreatedPersonalToken>.Ok ok => TypedResults.Created($"/api/account/tokens/{ok.Value.Id}", ok.Value),
            ServiceResult<CreatedPersonalToken>.Invalid invalid => ApiResults.Invalid(invalid.Errors),
            _ => throw new InvalidOperationException(),
        };
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeToken(string id, ClaimsPrincipal user, PersonalTokens tokens, CancellationToken ct) =>
        ApiResults.TryParseId(id, out var guid) && await tokens.RevokeAsync(user.UserId(), guid, ct)
            ? TypedResults.NoContent()
            : ApiResults.NotFound($"No personal token {id}.");
}
