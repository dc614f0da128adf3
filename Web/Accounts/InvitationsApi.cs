// /api/account/invitations: the owner's sign-up links (docs/accounts.md). To anyone else these routes do not exist: the
// same 404 as an unknown path, so a non-owner learns nothing about them.
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using SentryVibe.Web.Apis;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Accounts;

public static class InvitationsApi
{
    public static RouteGroupBuilder MapInvitationsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/account/invitations").WithTags("Account");
        api.MapGet("/", List);
        api.MapPost("/", Create).Accepts<CreateInvitationRequest>("application/json");
        api.MapDelete("/{id}", Revoke);
        return api;
    }

    /// <summary>Exactly what an unmatched route answers (the status-code pages turn it into the same problem+json).</summary>
    private static NotFound NotThere() => TypedResults.NotFound();

    public static async Task<Results<Ok<IReadOnlyList<InvitationView>>, NotFound>> List(ClaimsPrincipal user, Invitations invitations, CancellationToken ct) =>
        user.IsOwner() ? TypedResults.Ok(await invitations.ListAsync(ct)) : NotThere();

    public static async Task<Results<Created<CreatedInvitation>, ValidationProblem, ProblemHttpResult, NotFound>> Create(
        HttpRequest request, ClaimsPrincipal user, Invitations invitations, CancellationToken ct)
    {
        if (!user.IsOwner()) return NotThere();
        var body = await JsonBody.ReadAsync<CreateInvitationRequest>(request, ct);
        if (body.Invalid is { } invalidBody) return invalidBody;
        if (body.TooLarge is { } tooLarge) return tooLarge;
        return await invitations.CreateAsync(user.UserId(), body.Value!, ct) switch
        {
            ServiceResult<CreatedInvitation>.Ok ok => TypedResults.Created($"/api/account/invitations/{ok.Value.Id}", ok.Value),
            ServiceResult<CreatedInvitation>.Invalid invalid => ApiResults.Invalid(invalid.Errors),
            _ => throw new InvalidOperationException(),
        };
    }

    public static async Task<Results<NoContent, ProblemHttpResult, NotFound>> Revoke(string id, ClaimsPrincipal user, Invitations invitations, CancellationToken ct)
    {
        if (!user.IsOwner()) return NotThere();
        return ApiResults.TryParseId(id, out var guid) && await invitations.RevokeAsync(guid, ct)
            ? TypedResults.NoContent()
            : ApiResults.NotFound($"No invitation {id}.");
    }
}
