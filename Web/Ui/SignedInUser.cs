// Whose eyes a Blazor component sees with: the user of the cascading authentication state (docs/accounts.md).
using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;
using SentryVibe.Web.Accounts;

namespace SentryVibe.Web.Ui;

public static class SignedInUser
{
    /// <summary>The signed-in user's id, or null for an anonymous visitor (who sees nothing of anyone's).</summary>
    public static async Task<Guid?> UserIdAsync(this Task<AuthenticationState>? state)
    {
        if (state is null) return null;
        var user = (await state).User;
        return user.Identity?.IsAuthenticated == true && user.FindFirstValue(ClaimTypes.NameIdentifier) is not null
            ? user.UserId()
            : null;
    }
}
