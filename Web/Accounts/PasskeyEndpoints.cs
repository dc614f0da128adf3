// The server half of a passkey ceremony's first step (docs/accounts.md): the WebAuthn options the browser passes to
// navigator.credentials.get/create (wwwroot/app.js). Identity keeps the challenge in a short-lived cookie of this
// response; the form post that follows (the login page, the account page) checks the browser's answer against it.
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using SentryVibe.Data;
using SentryVibe.Web.Auth;

namespace SentryVibe.Web.Accounts;

public static class PasskeyEndpoints
{
    public const string RequestOptionsPath = "/login/passkey-options";
    public const string CreationOptionsPath = "/api/account/passkeys/creation-options";

    public static IEndpointRouteBuilder MapPasskeyEndpoints(this IEndpointRouteBuilder app)
    {
        // Anonymous: whoever is about to sign in. Discoverable credentials, so no user name is asked for first.
        app.MapPost(RequestOptionsPath, RequestOptions).AllowAnonymous().ExcludeFromDescription();
        app.MapPost(CreationOptionsPath, CreationOptions).ExcludeFromDescription();
        return app;
    }

    public static async Task<Results<ContentHttpResult, ProblemHttpResult>> RequestOptions(HttpContext context, SignInManager<User> signIn)
    {
        // Only this site's own login page asks (the signed-in cross-site check does not cover an anonymous caller).
        if (!SameOriginRequests.IsSameOrigin(context.Request))
        {
            return TypedResults.Problem("Passkey sign-in starts from this site's login page.", statusCode: StatusCodes.Status403Forbidden, title: "Forbidden");
        }
        return TypedResults.Content(await signIn.MakePasskeyRequestOptionsAsync(null), "application/json");
    }

    public static async Task<Results<ContentHttpResult, NotFound>> CreationOptions(
        HttpContext context, UserManager<User> users, SignInManager<User> signIn)
    {
        if (await users.GetUserAsync(context.User) is not { } user) return TypedResults.NotFound();
        var options = await signIn.MakePasskeyCreationOptionsAsync(new PasskeyUserEntity
        {
            Id = user.Id.ToString(),
            Name = user.Email ?? user.UserName ?? user.Id.ToString(),
            DisplayName = user.Label,
        });
        return TypedResults.Content(options, "application/json");
    }
}
