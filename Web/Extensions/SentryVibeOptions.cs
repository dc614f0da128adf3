using System.ComponentModel.DataAnnotations;

namespace SentryVibe.Web.Extensions;

/// <summary>The <c>SentryVibe</c> configuration section (env <c>SentryVibe__ApiToken</c> etc.).</summary>
public sealed class SentryVibeOptions
{
    public const string Section = "SentryVibe";

    /// <summary>Bearer token of <c>/api</c> and the secret behind the UI's login. The AppHost generates it.</summary>
    [Required(ErrorMessage = "SentryVibe:ApiToken is not set (environment variable SentryVibe__ApiToken); the AppHost generates one.")]
    [MinLength(16, ErrorMessage = "SentryVibe:ApiToken must be at least 16 characters.")]
    public string ApiToken { get; set; } = "";

    /// <summary>
    /// E-mail (and user name) of the owner account the first start creates (docs/accounts.md). The API token and the
    /// AppHost's login link sign in as this user.
    /// </summary>
    [EmailAddress(ErrorMessage = "SentryVibe:OwnerEmail must be an e-mail address.")]
    public string OwnerEmail { get; set; } = "owner@localhost";

    /// <summary>
    /// The broker's runner endpoint as a runner on another machine reaches it (<c>ws(s)://host/runner</c>); the AppHost sets it.
    /// The Runners page puts it into the <c>sentryvibe-runner run</c> command it shows.
    /// </summary>
    public string? BrokerUrl { get; set; }

    /// <summary>Domain under which the broker serves previews (<c>{previewId}.{PreviewDomain}</c>).</summary>
    public string? PreviewDomain { get; set; }

    /// <summary>How long a queued command waits for its runner before it expires with a visible reason.</summary>
    public TimeSpan CommandTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Runner that gets the commands when no runner has ever registered (the AppHost's local runner).</summary>
    public string DefaultRunnerId { get; set; } = "local";

    /// <summary>
    /// Pages are rendered on the server's first response (sidebar, project list, form, project header and chat) and become
    /// interactive when the Blazor circuit connects (Web/README.md, UI). False shows a blank page until then;
    /// the bench runs both to measure first paint.
    /// </summary>
    public bool Prerender { get; set; } = true;

    /// <summary>Comment lines on idle event streams, so proxies keep them open; also the safety re-query period.</summary>
    public TimeSpan SseKeepAlive { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often queued commands are checked for expiry.</summary>
    public TimeSpan ExpiryScanInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest JSON request body /api accepts (413 beyond).</summary>
    public int MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Largest prompt, in UTF-8 bytes.</summary>
    public int MaxPromptBytes { get; set; } = 32 * 1024;

    /// <summary>Wrong tokens a client address may try at the login form or link per minute (then 429 until the minute ends).</summary>
    public int LoginAttemptsPerMinute { get; set; } = 10;

    /// <summary>
    /// Addresses of the reverse proxy whose <c>X-Forwarded-For</c>/<c>X-Forwarded-Proto</c> are believed (when neither
    /// this nor <see cref="TrustedNetworks"/> is set: loopback only). Behind TLS termination this makes the request https, so the UI cookie is Secure and the same-origin
    /// check sees the browser's scheme. See docs/operations.md, "Behind a proxy".
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>Networks (CIDR, e.g. <c>10.0.0.0/8</c>) whose forwarded headers are believed, for proxies without a fixed address.</summary>
    public List<string> TrustedNetworks { get; set; } = [];
}
