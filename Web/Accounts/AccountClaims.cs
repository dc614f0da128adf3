// Who a request is: the claims every signed-in principal carries, whichever way it signed in (docs/accounts.md).
using System.Security.Claims;
using SentryVibe.Data;

namespace SentryVibe.Web.Accounts;

public static class AccountClaims
{
    /// <summary>Present (value "true") on the owner's principals: the owner invites people and sees the invitations.</summary>
    public const string Owner = "sentryvibe:owner";

    /// <summary>The signed-in user's id. Every signed-in principal has one; an anonymous one throws.</summary>
    public static Guid UserId(this ClaimsPrincipal principal) =>
        principal.FindFirstValue(ClaimTypes.NameIdentifier) is { } value && Guid.TryParse(value, out var id)
            ? id
            : throw new InvalidOperationException("The request has no signed-in user.");

    public static bool IsOwner(this ClaimsPrincipal principal) => principal.HasClaim(Owner, "true");

    /// <summary>The principal of <paramref name="user"/> under <paramref name="authenticationType"/> (the bearer scheme).</summary>
    public static ClaimsPrincipal PrincipalOf(User user, string authenticationType)
    {
        List<Claim> claims =
        [
            new(ClaimTypes.NameIdentifier, user.Id.ToString()),
            new(ClaimTypes.Name, user.Label),
        ];
        if (user.IsOwner) claims.Add(new Claim(Owner, "true"));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType));
    }
}
