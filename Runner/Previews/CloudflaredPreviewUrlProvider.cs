// Cloudflare quick tunnel: runs `cloudflared tunnel --url http://localhost:<port>` under the supervisor and reads the
// random https://<words>.trycloudflare.com address from its log.
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Previews;

public sealed partial class CloudflaredPreviewUrlProvider(
    ProcessSupervisor supervisor,
    IOptions<PreviewOptions> options,
    ILogger<CloudflaredPreviewUrlProvider>? logger = null,
    Core.ChildEnvironment? environment = null) : IPreviewUrlProvider
{
    public const string InstallHint =
        "Install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ — " +
        "macOS: `brew install cloudflared`; Debian/Ubuntu: the cloudflared .deb from that page; Windows: `winget install --id Cloudflare.cloudflared`), " +
        "or set Preview:Provider to \"relay\" (the default), which needs nothing installed: the broker forwards previews over the runner's connection.";

    /// <summary>After the URL is known, how long to wait for the tunnel to register before handing the URL out anyway.</summary>
    private static readonly TimeSpan RegistrationWait = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<Guid, SupervisedProcess> _tunnels = new();
    private readonly ILogger _logger = logger ?? NullLogger<CloudflaredPreviewUrlProvider>.Instance;

    public string Name => PreviewProviders.Cloudflared;

    public async Task<string> StartAsync(Guid projectId, string? previewId, int port, CancellationToken cancellationToken)
    {
        await StopAsync(projectId);

        var o = options.Value;
        var path = ExecutableLocator.Find(o.CloudflaredPath)
            ?? throw new ExecutableNotFoundException(o.CloudflaredPath, "The cloudflared preview provider needs it. " + InstallHint);

        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lastLines = new ConcurrentQueue<string>();
        void OnLine(string line)
        {
            lastLines.Enqueue(line);
            while (lastLines.Count > 20)
            {
                lastLines.TryDequeue(out _);
            }
            if (TunnelUrl().Match(line) is { Success: true } match)
            {
                url.TrySetResult(match.Value);
            }
            if (line.Contains("Registered tunnel connection", StringComparison.OrdinalIgnoreCase))
            {
                registered.TrySetResult();
            }
        }

        var command = Cli.Wrap(path)
            .WithArguments(args => args
                .Add("tunnel")
                .Add("--no-autoupdate")
                .Add("--url").Add($"http://localhost:{port}")
                // Dev servers (Vite's allowedHosts, Next's dev origin checks) trust localhost, not *.trycloudflare.com.
                .Add("--http-host-header").Add("localhost"))
            .WithEnvironmentVariables((environment ?? Core.ChildEnvironment.Default).For())
            .WithStandardOutputPipe(PipeTarget.ToDelegate(OnLine))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(OnLine));

        var process = supervisor.Start("cloudflared", projectId, command);
        _tunnels[projectId] = process;
        try
        {
            var timeout = Task.Delay(o.CloudflaredTimeout, cancellationToken);
            var first = await Task.WhenAny(url.Task, process.Completion, timeout);
            if (first == process.Completion && !url.Task.IsCompleted)
            {
                var exit = await process.Completion;
                throw new InvalidOperationException(
                    $"cloudflared exited (code {exit.ExitCode?.ToString() ?? "unknown"}) before it printed a trycloudflare.com URL. Its last lines:\n{string.Join('\n', lastLines)}");
            }
            if (first == timeout && !url.Task.IsCompleted)
            {
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException(
                    $"cloudflared printed no trycloudflare.com URL within {o.CloudflaredTimeout.TotalSeconds:0} s (Cloudflare unreachable?). Its last lines:\n{string.Join('\n', lastLines)}");
            }

            var publicUrl = await url.Task;
            // The URL is printed before the edge knows the tunnel; opening it that early shows an error page.
            await Task.WhenAny(registered.Task, process.Completion, Task.Delay(RegistrationWait, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
            if (process.Completion.IsCompleted)
            {
                throw new InvalidOperationException($"cloudflared exited right after printing {publicUrl}. Its last lines:\n{string.Join('\n', lastLines)}");
            }
            if (!registered.Task.IsCompleted)
            {
                _logger.LogWarning("cloudflared has not registered a tunnel connection yet; handing out {Url} anyway", publicUrl);
            }
            return publicUrl + "/";
        }
        catch
        {
            await StopAsync(projectId);
            throw;
        }
    }

    public async Task StopAsync(Guid projectId)
    {
        if (_tunnels.TryRemove(projectId, out var process))
        {
            await supervisor.StopAsync(process);
        }
    }

    // api.trycloudflare.com appears in cloudflared's own error messages; it is not a tunnel.
    [GeneratedRegex(@"https://(?!api\.)[a-z0-9-]+\.trycloudflare\.com", RegexOptions.IgnoreCase)]
    private static partial Regex TunnelUrl();
}
