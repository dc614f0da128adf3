// One secret guards the whole app: API clients send it as a bearer token, the browser trades it for a cookie.
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Auth;

public static class AuthSchemes
{
    /// <summary>Picks bearer when an Authorization header is present, else the cookie.</summary>
    public const string Default = "SentryVibe";
    public const string Bearer = "ApiToken";
    public const string Cookie = CookieAuthenticationDefaults.AuthenticationScheme;
    public const string CookieName = ".SentryVibe.Auth";
    public const string TokenClaim = "sentryvibe:token";
}

/// <summary>Checks a presented token against the configured one without leaking where they differ.</summary>
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

    /// <summary>
    /// A one-way fingerprint of the current token, kept in the cookie: rotating the token signs every browser out.
    /// </summary>
    public string Fingerprint() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("cookie:" + options.CurrentValue.ApiToken)))[..16];

    public ClaimsPrincipal CreatePrincipal(string scheme) =>
        new(new ClaimsIdentity([new Claim(ClaimTypes.Name, "owner"), new Claim(AuthSchemes.TokenClaim, Fingerprint())], scheme));
}

public sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiTokenValidator validator,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!AuthenticationHeaderValue.TryParse(Request.Headers.Authorization, out var header)
            || !string.Equals(header.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        // The message never contains the token itself.
        return Task.FromResult(validator.IsValid(header.Parameter)
            ? AuthenticateResult.Success(new AuthenticationTicket(validator.CreatePrincipal(Scheme.Name), Scheme.Name))
            : AuthenticateResult.Fail("The bearer token is not valid."));
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
                Detail = "Send 'Authorization: Bearer <api token>' (see ~/.sentryvibe/apphost.json) or sign in through /login.",
            },
        });
    }
}

public static class AuthenticationExtensions
{
    public static IHostApplicationBuilder AddSentryVibeAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiTokenValidator>();
        builder.Services.AddAuthentication(AuthSchemes.Default)
            .AddPolicyScheme(AuthSchemes.Default, "Bearer token or cookie", o => o.ForwardDefaultSelector = context =>
                context.Request.Headers.Authorization.Count > 0 ? AuthSchemes.Bearer : AuthSchemes.Cookie)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(AuthSchemes.Bearer, null)
            .AddCookie(AuthSchemes.Cookie, o =>
            {
                o.Cookie.Name = AuthSchemes.CookieName;
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Lax;
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.LoginPath = "/login";
                o.LogoutPath = "/logout";
                o.ExpireTimeSpan = TimeSpan.FromDays(30);
                o.SlidingExpiration = true;
                o.Events = new CookieAuthenticationEvents
                {
                    // The API answers 401/403 problems; only pages redirect to the login form.
                    OnRedirectToLogin = context => IsApi(context.Request)
                        ? WriteProblemAsync(context.HttpContext, StatusCodes.Status401Unauthorized, "Unauthorized",
                            "Send 'Authorization: Bearer <api token>' or sign in through /login.")
                        : Redirect(context),
                    OnRedirectToAccessDenied = context => IsApi(context.Request)
                        ? WriteProblemAsync(context.HttpContext, StatusCodes.Status403Forbidden, "Forbidden", null)
                        : Redirect(context),
                    OnValidatePrincipal = async context =>
                    {
                        var validator = context.HttpContext.RequestServices.GetRequiredService<ApiTokenValidator>();
                        if (context.Principal?.FindFirst(AuthSchemes.TokenClaim)?.Value != validator.Fingerprint())
                        {
                            context.RejectPrincipal();
                            await context.HttpContext.SignOutAsync(AuthSchemes.Cookie);
                        }
                    },
                };
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
