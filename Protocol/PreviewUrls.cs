using System.Security.Cryptography;

namespace SentryVibe.Protocol;

/// <summary>
/// The one rule for preview addresses, applied where a preview URL is stored (the broker's event intake) and again
/// where it is shown or opened (web UI; the VS Code extension mirrors it in <c>src/core/previewUrls.ts</c>).
/// A relay URL is never taken from a runner: the server builds it from the project's preview id. Other providers'
/// URLs are accepted only as http(s) to loopback or a Cloudflare quick tunnel. See docs/security.md.
/// </summary>
public static class PreviewUrls
{
    /// <summary>Web makes preview ids as 16 random bytes in lower-case hex; anything else names no preview.</summary>
    public const int PreviewIdLength = 32;

    /// <summary>The provider name of the broker's preview relay, whose URLs only the server builds.</summary>
    public const string RelayProvider = "relay";

    /// <summary>The quick-tunnel domain of the cloudflared provider.</summary>
    public const string CloudflareTunnelSuffix = ".trycloudflare.com";

    /// <summary>True when <paramref name="label"/> has the exact shape of a preview id (checked before any lookup).</summary>
    public static bool IsPreviewId(ReadOnlySpan<char> label)
    {
        if (label.Length != PreviewIdLength) return false;
        foreach (var c in label)
        {
            if (!char.IsAsciiHexDigitLower(c)) return false; // 0-9 a-f
        }
        return true;
    }

    /// <summary>A new preview id: 128 random bits in lower-case hex, so previews cannot be guessed.</summary>
    public static string NewPreviewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(PreviewIdLength / 2));

    /// <summary>The relay URL of a preview: <c>{scheme}://{previewId}.{previewDomain}/</c>, built by the server.</summary>
    public static string ForRelay(string previewId, string previewDomain, string scheme = "http") =>
        $"{(scheme is "https" ? "https" : "http")}://{previewId}.{previewDomain.Trim().TrimEnd('/')}/";

    /// <summary>
    /// True when a runner-reported URL may be stored and shown: absolute http(s), no user info, and a host that is
    /// loopback (<c>localhost</c>, <c>*.localhost</c>, 127.0.0.0/8, ::1), a Cloudflare quick tunnel, or a single label
    /// under <paramref name="relayDomain"/> (the configured preview domain, port ignored as behind a proxy).
    /// </summary>
    public static bool IsAcceptable(string? url, string? relayDomain = null)
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2048) return false;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) return false;
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) return false;
        if (uri.UserInfo.Length > 0) return false;
        var host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (host.Length == 0) return false;
        if (uri.IsLoopback || host == "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal)) return true;
        if (host.EndsWith(CloudflareTunnelSuffix, StringComparison.Ordinal)
            && host.Length > CloudflareTunnelSuffix.Length
            && !host[..^CloudflareTunnelSuffix.Length].Contains('.'))
        {
            return true;
        }
        if (relayDomain is { Length: > 0 })
        {
            var domain = StripPort(relayDomain.Trim().TrimEnd('/').TrimEnd('.')).ToLowerInvariant();
            if (host.EndsWith("." + domain, StringComparison.Ordinal)
                && IsPreviewId(host.AsSpan(0, host.Length - domain.Length - 1)))
            {
                return true;
            }
        }
        return false;
    }

    private static string StripPort(string authority)
    {
        if (authority.StartsWith('[')) return authority;
        var colon = authority.LastIndexOf(':');
        return colon < 0 ? authority : authority[..colon];
    }
}
