using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>
/// The product's promise, whole: a prompt becomes a project folder, the runner starts its dev server, and the app shows
/// in a real browser through the broker's relay, with HMR over the relayed WebSocket.
/// </summary>
[Collection(WholeAppCollection.Name)]
public sealed class PreviewEndToEndTests(RunningAppFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(5); // a cold `npm install` of the template included

    private RunningApp App => fixture.App;

    [Fact]
    public async Task A_prompt_becomes_a_live_app_in_the_browser_through_the_relay_and_edits_arrive_by_hmr()
    {
        using var api = App.CreateApiClient();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var created = await api.PostAsJsonAsync("/api/projects", new { prompt = "Create a React todo app", templateId = "vite-react", agent = "none" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();

        var project = await Eventually.WaitAsync(async () =>
        {
            var p = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
            var dev = p.GetProperty("devServer");
            Assert.NotEqual("failed", p.GetProperty("status").GetString());
            Assert.NotEqual("failed", dev.GetProperty("status").GetString());
            return p.GetProperty("status").GetString() == "ready" && dev.GetProperty("status").GetString() == "running" ? (JsonElement?)p : null;
        }, ReadyTimeout, "the project to be ready with its dev server running");
        output.WriteLine($"POST to running dev server: {clock.Elapsed.TotalSeconds:0.0} s");

        var previewUrl = project!.Value.GetProperty("devServer").GetProperty("previewUrl").GetString()!;
        Assert.Matches(@"^http://[0-9a-f]{32}\.preview\.localhost:\d+/$", previewUrl);
        Assert.Equal(App.Contract.PreviewDomain, new Uri(previewUrl).Authority[(new Uri(previewUrl).Host.IndexOf('.') + 1)..]);

        using (var http = LoopbackHttp.Create())
        {
            var page = await http.GetAsync(previewUrl);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("<div id=\"root\">", await page.Content.ReadAsStringAsync());
        }

        var (playwright, browser) = await Chromium.LaunchAsync();
        try
        {
            var tab = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 800 } });
            await tab.GotoAsync(previewUrl);
            await tab.GetByText("Your app is").WaitForAsync(new() { Timeout = 60_000 });
            await tab.ScreenshotAsync(new() { Path = Chromium.ArtifactPath("preview-through-relay.png") });

            // A full reload would lose this marker; HMR keeps it.
            await tab.EvaluateAsync("() => { window.__sentryvibeMarker = 42; }");
            var app = Path.Combine(project.Value.GetProperty("path").GetString()!, "src", "App.tsx");
            var source = await File.ReadAllTextAsync(app);
            Assert.Contains("Your app is", source);
            await File.WriteAllTextAsync(app, source.Replace("Your app is", "Hot reloaded through the relay, and"));

            await tab.GetByText("Hot reloaded through the relay").WaitForAsync(new() { Timeout = 60_000 });
            Assert.Equal(42, await tab.EvaluateAsync<int>("() => window.__sentryvibeMarker"));
            await tab.ScreenshotAsync(new() { Path = Chromium.ArtifactPath("preview-after-hmr.png") });
        }
        finally
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }

        var checkpoints = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/checkpoints");
        Assert.True(checkpoints.GetArrayLength() >= 1, "the scaffold is a checkpoint");
    }

    [Fact]
    public async Task An_unknown_preview_id_gets_a_page_that_says_so()
    {
        using var http = LoopbackHttp.Create();
        var response = await http.GetAsync($"http://{new string('0', 32)}.{App.Contract.PreviewDomain}/");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("No such preview", await response.Content.ReadAsStringAsync());
    }
}
