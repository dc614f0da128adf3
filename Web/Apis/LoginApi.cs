// Signing in and out of the browser UI. The login form itself is the Blazor page Components/Pages/Login.razor.
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Authentication;
using SentryVibe.Web.Auth;

namespace SentryVibe.Web.Apis;

public static class LoginApi
{
    public static IEndpointRouteBuilder MapLoginApi(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/logout", [HttpMethods.Get, HttpMethods.Post], (Delegate)Logout).AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    public static async Task<RedirectHttpResult> Logout(HttpContext context)
    {
        await context.SignOutAsync(AuthSchemes.Cookie);
        return TypedResults.Redirect("/login");
    }

    /// <summary>Issues the UI cookie when <paramref name="token"/> is the API token.</summary>
    public static async Task<bool> TrySignInAsync(HttpContext context, string? token)
    {
        var validator = context.RequestServices.GetRequiredService<ApiTokenValidator>();
        if (!validator.IsValid(token)) return false;
        await context.SignInAsync(AuthSchemes.Cookie, validator.CreatePrincipal(AuthSchemes.Cookie),
            new AuthenticationProperties { IsPersistent = true });
        return true;
    }

    /// <summary>Only local paths, so the login cannot be used to bounce users to another site.</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 } url && url.StartsWith('/') && !url.StartsWith("//") && !url.StartsWith("/\\") ? url : "/";
}
