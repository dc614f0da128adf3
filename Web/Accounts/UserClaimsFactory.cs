using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using SentryVibe.Data;

namespace SentryVibe.Web.Accounts;

/// <summary>Identity's cookie principal, with the name the UI shows and the owner claim (<see cref="AccountClaims"/>).</summary>
public sealed class UserClaimsFactory(UserManager<User> users, IOptions<IdentityOptions> options)
    : UserClaimsPrincipalFactory<User>(users, options)
{
    protected override async Task<ClaimsIdentity> GenerateClaimsAsync(User user)
    {
        var identity = await base.GenerateClaimsAsync(user);
        if (identity.FindFirst(ClaimTypes.Name) is { } name) identity.RemoveClaim(name);
        identity.AddClaim(new Claim(ClaimTypes.Name, user.Label));
        if (user.IsOwner) identity.AddClaim(new Claim(AccountClaims.Owner, "true"));
        return identity;
    }
}
