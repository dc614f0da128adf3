using Microsoft.Playwright;

namespace SentryVibe.Testing;

/// <summary>The machine's Chromium through Playwright (never a downloaded browser: this machine cannot fetch one).</summary>
public static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"Chromium is not installed at {ExecutablePath}: `apt-get install -y chromium` (.ci/run does it).");
        }
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        });
        return (playwright, browser);
    }

    /// <summary>Where screenshots go: kept as test artifacts beside the test binaries.</summary>
    public static string ArtifactPath(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }
}
