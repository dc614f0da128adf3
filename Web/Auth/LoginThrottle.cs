// Guessing the API token through the login form or link is slowed down per client address (docs/security.md).
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Auth;

/// <summary>
/// Counts failed sign-ins per client IP in a fixed one-minute window (<see cref="SentryVibeOptions.LoginAttemptsPerMinute"/>):
/// once an address has used them up, every attempt from it is refused, right or wrong, until the window ends. Successful
/// sign-ins cost nothing, so a user opening the login link in several tabs is never locked out.
/// </summary>
public sealed class LoginThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<string> _failures;

    public LoginThrottle(IOptions<SentryVibeOptions> options)
    {
        var limit = Math.Max(1, options.Value.LoginAttemptsPerMinute);
        _failures = PartitionedRateLimiter.Create<string, string>(ip => RateLimitPartition.GetFixedWindowLimiter(ip, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = limit,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    public const string TooManyMessage = "Too many sign-in attempts from your address: wait a minute, then try again.";

    private static string ClientOf(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    /// <summary>True when this client may try a token now.</summary>
    public bool MayTry(HttpContext context) => _failures.GetStatistics(ClientOf(context))?.CurrentAvailablePermits is null or > 0;

    /// <summary>Spends one of the client's attempts on a wrong token.</summary>
    public void Failed(HttpContext context)
    {
        using var _ = _failures.AttemptAcquire(ClientOf(context));
    }

    public void Dispose() => _failures.Dispose();
}
