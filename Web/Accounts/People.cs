// The people of this SentryVibe, as its owner sees them (docs/accounts.md, "What the owner can see"): who has an
// account and how much of it they use — never the content of their projects, runners or tokens.
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;

namespace SentryVibe.Web.Accounts;

public sealed record PersonView(Guid Id, string Name, string? Email, bool IsOwner, DateTimeOffset CreatedAt, int Projects, int Runners);

public sealed class People(SentryVibeDb db)
{
    /// <summary>Everyone with an account, the owner first, then by when they joined; projects being deleted are not counted.</summary>
    public async Task<IReadOnlyList<PersonView>> ListAsync(CancellationToken ct)
    {
        var rows = await db.Users.AsNoTracking()
            .Select(u => new
            {
                u.Id,
                u.DisplayName,
                u.Email,
                u.UserName,
                u.IsOwner,
                u.CreatedAt,
                Projects = db.Projects.Count(p => p.OwnerId == u.Id && p.DeletedAt == null),
                Runners = db.Runners.Count(r => r.OwnerId == u.Id),
            })
            .ToListAsync(ct);
        return rows
            .OrderByDescending(u => u.IsOwner).ThenBy(u => u.CreatedAt)
            .Select(u => new PersonView(u.Id, u.DisplayName is { Length: > 0 } name ? name : u.Email ?? u.UserName ?? u.Id.ToString(),
                u.Email, u.IsOwner, u.CreatedAt, u.Projects, u.Runners))
            .ToList();
    }
}

public static class PeopleApi
{
    /// <summary><c>GET /api/account/users</c>: the owner's list of people. To anyone else the route does not exist (404).</summary>
    public static RouteHandlerBuilder MapPeopleApi(this IEndpointRouteBuilder app) =>
        app.MapGet("/api/account/users", List).WithTags("Account");

    public static async Task<Results<Ok<IReadOnlyList<PersonView>>, NotFound>> List(ClaimsPrincipal user, People people, CancellationToken ct) =>
        user.IsOwner() ? TypedResults.Ok(await people.ListAsync(ct)) : TypedResults.NotFound();
}
