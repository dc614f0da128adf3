namespace SentryVibe.Broker.Previews;

/// <summary>Reads the preview id out of a request's host: <c>&lt;preview-id&gt;.&lt;preview-domain&gt;</c>.</summary>
public static class PreviewHost
{
    /// <summary>
    /// True when <paramref name="host"/> is a single label under <paramref name="previewDomain"/>. Ports are ignored on
    /// both sides: behind a proxy (Railway) the public port differs from the one Kestrel listens on.
    /// </summary>
    public static bool TryParse(string? host, string previewDomain, out string previewId)
    {
        previewId = "";
        if (string.IsNullOrEmpty(host)) return false;
        var name = StripPort(host).TrimEnd('.');
        var suffix = "." + StripPort(previewDomain).TrimEnd('.');
        if (!name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) return false;
        var label = name[..^suffix.Length];
        if (label.Length is 0 or > 63 || label.Contains('.')) return false;
        foreach (var c in label)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-')) return false;
        }
        previewId = label.ToLowerInvariant();
        return true;
    }

    private static string StripPort(string host)
    {
        if (host.StartsWith('[')) return host; // IPv6 literals are never preview hosts
        var colon = host.LastIndexOf(':');
        return colon < 0 ? host : host[..colon];
    }
}
