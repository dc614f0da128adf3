// Seam between the link (Link/), which hears the broker's Hello reply, and the preview providers (Previews/).
namespace SentryVibe.Runner.Core;

/// <summary>What the connected broker told the runner about previews (known after its Hello reply).</summary>
public interface IBrokerInfo
{
    /// <summary>The broker's preview domain (e.g. <c>preview.localhost:5090</c>), or null before the first Hello.</summary>
    string? PreviewDomain { get; }

    /// <summary>http, or https when the broker is reached over wss.</summary>
    string PreviewScheme { get; }

    /// <summary>
    /// A relayed preview is about to be opened (its dev server just started serving): the link dials its spare preview
    /// sockets now, so even the first page load opens its connections without waiting for the runner (docs/runner-protocol.md,
    /// "Spare preview sockets").
    /// </summary>
    void PreviewStarting();
}
