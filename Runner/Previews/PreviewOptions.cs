namespace SentryVibe.Runner.Previews;

/// <summary>How previews reach the user; bound from the "Preview" configuration section.</summary>
public sealed class PreviewOptions
{
    public const string SectionName = "Preview";

    /// <summary>relay (default: the broker forwards over the runner's link), cloudflared (quick tunnel) or local.</summary>
    public string Provider { get; set; } = PreviewProviders.Relay;

    /// <summary>Host (and port) under which the broker serves previews: <c>{previewId}.{RelayDomain}</c>.</summary>
    public string RelayDomain { get; set; } = "preview.localhost:5080";

    public string RelayScheme { get; set; } = "http";

    /// <summary>The cloudflared program: a name looked up on PATH, or a full path.</summary>
    public string CloudflaredPath { get; set; } = "cloudflared";

    /// <summary>How long to wait for cloudflared to print its trycloudflare.com URL.</summary>
    public TimeSpan CloudflaredTimeout { get; set; } = TimeSpan.FromSeconds(45);
}

public static class PreviewProviders
{
    public const string Relay = "relay";
    public const string Cloudflared = "cloudflared";
    public const string Local = "local";
}
