using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

/// <summary>The preview domain from the broker's Hello reply, the scheme its address implies, and the link's spare preview sockets.</summary>
public sealed class BrokerInfo(LinkState state, IOptions<RunnerOptions> options) : IBrokerInfo
{
    public string? PreviewDomain => state.PreviewDomain;

    public string PreviewScheme => options.Value.BrokerUri.Scheme is "wss" or "https" ? "https" : "http";

    public void PreviewStarting() => state.PreviewSpares?.Fill();
}
