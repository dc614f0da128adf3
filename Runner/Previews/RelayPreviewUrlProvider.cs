// The default: the broker serves {previewId}.{relay domain} and forwards it over the runner's link; nothing runs here.
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Previews;

/// <summary>The broker relay: the broker's own preview domain (from its Hello) wins over configuration.</summary>
public sealed class RelayPreviewUrlProvider(IOptions<PreviewOptions> options, IBrokerInfo? broker = null) : IPreviewUrlProvider
{
    public string Name => PreviewProviders.Relay;

    public Task<string> StartAsync(Guid projectId, string? previewId, int port, CancellationToken cancellationToken)
    {
        var o = options.Value;
        // Web hands out the preview id with the command; without one the project id is the only stable name we have.
        var id = string.IsNullOrWhiteSpace(previewId) ? projectId.ToString("N") : previewId.Trim().ToLowerInvariant();
        var domain = broker?.PreviewDomain is { Length: > 0 } announced ? announced : o.RelayDomain;
        var scheme = broker?.PreviewDomain is { Length: > 0 } ? broker.PreviewScheme
            : string.IsNullOrWhiteSpace(o.RelayScheme) ? "http" : o.RelayScheme.Trim();
        broker?.PreviewStarting();
        return Task.FromResult($"{scheme}://{id}.{domain.Trim().TrimEnd('/')}/");
    }

    public Task StopAsync(Guid projectId) => Task.CompletedTask;
}
