// Signing in and out of the browser UI. The login form itself is the Blazor page Components/Pages/Login.razor.
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Authentication;
using SentryVibe.Web.Auth;

namespace SentryVibe.Web.Apis;

public static class LoginApi
{
    public static IEndpointRouteBuilder MapLoginApi(this IEndpointRouteBuilder app)
    {
        // POST only, and (with the cookie) same-origin only (SameOriginRequests): a link or an image on another site
        // cannot sign the user out.
        app.MapPost("/logout", (Delegate)Logout).AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    public static async Task<RedirectHttpResult> Logout(HttpContext context)
    {
        await context.SignOutAsync(AuthSchemes.Cookie);
        return TypedResults.Redirect("/login");
    }

    public enum SignInResult { SignedIn, WrongToken, TooManyAttempts }

    /// <summary>
    /// Signs the owner in when <paramref name="token"/> is the API token (the AppHost's login link); a wrong one spends one of the client's
    /// attempts (LoginThrottle), and with none left nothing is checked.
    /// </summary>
    public static async Task<SignInResult> TrySignInAsync(HttpContext context, string? token)
    {
        var throttle = context.RequestServices.GetRequiredService<LoginThrottle>();
        if (!throttle.MayTry(context)) return SignInResult.TooManyAttempts;
        var validator = context.RequestServices.GetRequiredService<ApiTokenValidator>();
        if (!validator.IsValid(token))
        {
            throttle.Failed(context);
            return SignInResult.WrongToken;
        }
        // The API token is the owner's (docs/accounts.md): it signs the owner in.
        var owner = await context.RequestServices.GetRequiredService<Data.SentryVibeDb>().Users
            .FindAsync([context.RequestServices.GetRequiredService<Accounts.OwnerAccount>().Id], context.RequestAborted);
        if (owner is null) return SignInResult.WrongToken;
        await context.RequestServices.GetRequiredService<Microsoft.AspNetCore.Identity.SignInManager<Data.User>>()
            .SignInWithClaimsAsync(owner, isPersistent: true, [new System.Security.Claims.Claim(AuthSchemes.TokenClaim, validator.Fingerprint())]);
        return SignInResult.SignedIn;
    }

    /// <summary>Only local paths, so the login cannot be used to bounce users to another site.</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 } url && url.StartsWith('/') && !url.StartsWith("//") && !url.StartsWith("/\\") ? url : "/";
}
