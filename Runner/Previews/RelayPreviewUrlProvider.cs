// The default: the broker serves {previewId}.{relay domain} and forwards it over the runner's link; nothing runs here.
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Previews;

public sealed class RelayPreviewUrlProvider(IOptions<PreviewOptions> options) : IPreviewUrlProvider
{
    public string Name => PreviewProviders.Relay;

    public Task<string> StartAsync(Guid projectId, string? previewId, int port, CancellationToken cancellationToken)
    {
        var o = options.Value;
        // Web hands out the preview id with the command; without one the project id is the only stable name we have.
        var id = string.IsNullOrWhiteSpace(previewId) ? projectId.ToString("N") : previewId.Trim().ToLowerInvariant();
        var scheme = string.IsNullOrWhiteSpace(o.RelayScheme) ? "http" : o.RelayScheme.Trim();
        return Task.FromResult($"{scheme}://{id}.{o.RelayDomain.Trim().TrimEnd('/')}/");
    }

    public Task StopAsync(Guid projectId) => Task.CompletedTask;
}
