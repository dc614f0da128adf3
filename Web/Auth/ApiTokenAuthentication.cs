// Who is calling (docs/accounts.md): API clients send a personal token (svp_…) or the configured API token (the owner's)
// as a bearer token; the browser signs in through Identity (password, passkey, or the owner's login link) and carries
// its cookie.
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using SentryVibe.Data;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Auth;

public static class AuthSchemes
{
    /// <summary>Picks bearer when an Authorization header is present, else the cookie.</summary>
    public const string Default = "SentryVibe";
    public const string Bearer = "ApiToken";
    /// <summary>Identity's application cookie: what the browser signs in with.</summary>
    public const string Cookie = "Identity.Application";
    public const string CookieName = ".SentryVibe.Auth";
    /// <summary>On a session the API token opened: which token it was, so rotating the token ends that session.</summary>
    public const string TokenClaim = "sentryvibe:token";
}

/// <summary>Checks a presented token against the configured API token without leaking where they differ.</summary>
public sealed class ApiTokenValidator(IOptionsMonitor<SentryVibeOptions> options)
{
    public bool IsValid(string? presented)
    {
        if (string.IsNullOrEmpty(presented)) return false;
        var expected = options.CurrentValue.ApiToken;
        if (string.IsNullOrEmpty(expected)) return false;
        // Hashing first makes the comparison constant-time in the length too.
        return CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)),
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
    }

    /// <summary>A one-way fingerprint of the current token, kept in the sessions it opened (<see cref="AuthSchemes.TokenClaim"/>).</summary>
    public string Fingerprint() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("cookie:" + options.CurrentValue.ApiToken)))[..16];
}

public sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiTokenValidator validator,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!AuthenticationHeaderValue.TryParse(Request.Headers.Authorization, out var header)
            || !string.Equals(header.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var user = await UserOfAsync(header.Parameter);
        // The message never contains the token itself.
        return user is null
            ? AuthenticateResult.Fail("The bearer token is not valid.")
            : AuthenticateResult.Success(new AuthenticationTicket(AccountClaims.PrincipalOf(user, Scheme.Name), Scheme.Name));
    }

    private async Task<User?> UserOfAsync(string? presented)
    {
        if (string.IsNullOrEmpty(presented)) return null;
        if (presented.StartsWith(PersonalToken.Prefix, StringComparison.Ordinal))
        {
            return await Context.RequestServices.GetRequiredService<PersonalTokens>().AuthenticateAsync(presented, Context.RequestAborted);
        }
        if (!validator.IsValid(presented)) return null;
        var owner = Context.RequestServices.GetRequiredService<OwnerAccount>();
        return await Context.RequestServices.GetRequiredService<SentryVibeDb>().Users.FindAsync([owner.Id], Context.RequestAborted);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = "Unauthorized",
                Detail = "Send 'Authorization: Bearer <token>' (a personal token from your account page, or the API token in ~/.sentryvibe/apphost.json) or sign in through /login.",
            },
        });
    }
}

public static class AuthenticationExtensions
{
    public static IHostApplicationBuilder AddSentryVibeAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiTokenValidator>();
        builder.Services.AddSingleton<OwnerAccount>();
        builder.Services.AddScoped<PersonalTokens>();
        builder.Services.AddScoped<Invitations>();
        builder.Services.AddScoped<People>();
        builder.Services.AddAuthentication(AuthSchemes.Default)
            .AddPolicyScheme(AuthSchemes.Default, "Bearer token or cookie", o => o.ForwardDefaultSelector = context =>
                context.Request.Headers.Authorization.Count > 0 ? AuthSchemes.Bearer : AuthSchemes.Cookie)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(AuthSchemes.Bearer, null)
            .AddIdentityCookies();

        builder.Services.AddIdentityCore<User>(o =>
            {
                o.Stores.SchemaVersion = IdentitySchemaVersions.Version3; // passkeys
                o.User.RequireUniqueEmail = true;
                o.Password.RequiredLength = 10;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireLowercase = false;
                o.Password.RequireDigit = false;
                o.Lockout.MaxFailedAccessAttempts = 10;
            })
            .AddEntityFrameworkStores<SentryVibeDb>()
            .AddSignInManager()
            .AddDefaultTokenProviders()
            .AddClaimsPrincipalFactory<UserClaimsFactory>();

        builder.Services.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = AuthSchemes.CookieName;
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = "/login";
            o.LogoutPath = "/logout";
            o.ExpireTimeSpan = TimeSpan.FromDays(30);
            o.SlidingExpiration = true;
            // The API answers 401/403 problems; only pages redirect to the login form. Identity's security-stamp check
            // (OnValidatePrincipal) stays: changing a password or signing out everywhere ends the other cookies.
            o.Events.OnRedirectToLogin = context => IsApi(context.Request)
                ? WriteProblemAsync(context.HttpContext, StatusCodes.Status401Unauthorized, "Unauthorized",
                    "Send 'Authorization: Bearer <token>' or sign in through /login.")
                : Redirect(context);
            // Identity's security-stamp check, then: a session the API token opened (the login link) ends when the token
            // is rotated; sessions of a password or passkey do not carry the claim and are not touched.
            o.Events.OnValidatePrincipal = async context =>
            {
                await SecurityStampValidator.ValidatePrincipalAsync(context);
                if (context.Principal?.FindFirst(AuthSchemes.TokenClaim) is { } token
                    && token.Value != context.HttpContext.RequestServices.GetRequiredService<ApiTokenValidator>().Fingerprint())
                {
                    context.RejectPrincipal();
                    await context.HttpContext.SignOutAsync(AuthSchemes.Cookie);
                }
            };
            o.Events.OnRedirectToAccessDenied = context => IsApi(context.Request)
                ? WriteProblemAsync(context.HttpContext, StatusCodes.Status403Forbidden, "Forbidden", null)
                : Redirect(context);
        });

        builder.Services.Configure<SecurityStampValidatorOptions>(o => o.OnRefreshingPrincipal = context =>
        {
            if (context.CurrentPrincipal?.FindFirst(AuthSchemes.TokenClaim) is { } token && context.NewPrincipal?.Identity is ClaimsIdentity identity)
            {
                identity.AddClaim(new Claim(AuthSchemes.TokenClaim, token.Value));
            }
            return Task.CompletedTask;
        });

        builder.Services.AddAuthorizationBuilder()
            // Every endpoint needs a signed-in caller unless it says [AllowAnonymous] (login, health, static assets).
            .SetFallbackPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder(AuthSchemes.Default)
                .RequireAuthenticatedUser()
                .Build());
        return builder;
    }

    /// <summary>
    /// Believes X-Forwarded-For/-Proto only from the configured proxies (SentryVibe:TrustedProxies,
    /// SentryVibe:TrustedNetworks; loopback when none are configured): behind TLS termination the request is then https,
    /// the cookie Secure (SameAsRequest) and the client address the browser's (LoginThrottle). docs/operations.md.
    /// </summary>
    public static IHostApplicationBuilder AddTrustedProxies(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<Microsoft.AspNetCore.Builder.ForwardedHeadersOptions>()
            .Configure<IOptions<SentryVibeOptions>>((forwarded, sentryVibe) =>
            {
                forwarded.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor
                    | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto;
                // Configured, the list is exactly what was configured (loopback is believed only when nothing is).
                if (sentryVibe.Value.TrustedProxies.Count + sentryVibe.Value.TrustedNetworks.Count > 0)
                {
                    forwarded.KnownProxies.Clear();
                    forwarded.KnownIPNetworks.Clear();
                }
                foreach (var proxy in sentryVibe.Value.TrustedProxies) forwarded.KnownProxies.Add(System.Net.IPAddress.Parse(proxy));
                foreach (var network in sentryVibe.Value.TrustedNetworks) forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
            });
        return builder;
    }

    private static bool IsApi(HttpRequest request) => request.Path.StartsWithSegments("/api");

    private static Task Redirect(RedirectContext<CookieAuthenticationOptions> context)
    {
        context.Response.Redirect(context.RedirectUri);
        return Task.CompletedTask;
    }

    private static async Task WriteProblemAsync(HttpContext context, int status, string title, string? detail)
    {
        context.Response.StatusCode = status;
        await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }
}
