// For a UI on the same machine: the dev server itself.
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Previews;

public sealed class LocalPreviewUrlProvider : IPreviewUrlProvider
{
    public string Name => PreviewProviders.Local;

    public Task<string> StartAsync(Guid projectId, string? previewId, int port, CancellationToken cancellationToken) =>
        Task.FromResult($"http://localhost:{port}/");

    public Task StopAsync(Guid projectId) => Task.CompletedTask;
}
