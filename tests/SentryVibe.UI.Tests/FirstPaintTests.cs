// The server's first response already shows the page (prerendering), only to a signed-in browser, and the circuit that
// takes over keeps the live feed whole: nothing the first response showed is doubled, nothing that came after is lost.
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using SentryVibe.Protocol;
using static Microsoft.Playwright.Assertions;

namespace SentryVibe.UI.Tests;

[Collection(UiCollection.Name)]
public sealed class FirstPaintTests(UiFixture ui)
{
    [Fact]
    public async Task The_first_response_already_holds_the_project_list_the_new_project_form_and_the_project_header()
    {
        var id = await ui.CreateProjectAsync("Project Epsilon: a plant watering log");
        await ui.Broker.AppendAsync(id, new BuildStarted("Project Epsilon: a plant watering log", "vite-react", Agents.None),
            new AgentMessage("Epsilon first words"));
        using var browser = SignedInClient();
        await SignInAsync(browser);

        // Raw HTML, no script run: what a browser paints before blazor.web.js has even loaded.
        var home = await browser.GetStringAsync("/");
        Assert.Contains("What do you want to build?", home);
        Assert.Contains("Create project", home);
        Assert.Contains("Project Epsilon", home); // the sidebar's project list
        Assert.Contains("Runners", home);
        Assert.Contains(FakeBroker.RunnerId, home); // the form's runner choices

        var project = await browser.GetStringAsync($"/projects/{id}");
        Assert.Matches(new Regex("<h1[^>]*>Project Epsilon"), project);
        Assert.Contains("Epsilon first words", project);
        Assert.Contains("Ask for a change", project);
        Assert.Contains("Project Epsilon", project);
    }

    [Fact]
    public async Task A_signed_out_browser_gets_the_sign_in_page_and_not_a_prerendered_shell()
    {
        var id = await ui.CreateProjectAsync("Project Zeta: nobody else may see this");
        using var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(ui.BaseUrl) };

        foreach (var path in new[] { "/", $"/projects/{id}", "/runners" })
        {
            using var response = await anonymous.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.StartsWith("/login", response.Headers.Location!.PathAndQuery);
            Assert.DoesNotContain("Project Zeta", body);
            Assert.DoesNotContain("What do you want to build?", body);
            Assert.DoesNotContain("Sign out", body);
        }

        // A forged cookie and a wrong bearer token fare no better; the right bearer token still reads the API.
        using var forged = new HttpRequestMessage(HttpMethod.Get, "/");
        forged.Headers.Add("Cookie", ".SentryVibe.Auth=CfDJ8forged");
        using var forgedAnswer = await anonymous.SendAsync(forged);
        Assert.Equal(HttpStatusCode.Redirect, forgedAnswer.StatusCode);
        Assert.DoesNotContain("Project Zeta", await forgedAnswer.Content.ReadAsStringAsync());
        using var wrongBearer = new HttpRequestMessage(HttpMethod.Get, $"/projects/{id}");
        wrongBearer.Headers.Authorization = new("Bearer", "not-the-api-token-000000");
        using var wrongAnswer = await anonymous.SendAsync(wrongBearer);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongAnswer.StatusCode);
        Assert.DoesNotContain("Project Zeta", await wrongAnswer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_prerendered_chat_shows_before_the_circuit_and_then_the_live_feed_shows_every_event_exactly_once()
    {
        var id = await ui.CreateProjectAsync("Project Eta: a reading list");
        await ui.Broker.AppendAsync(id, new BuildStarted("Project Eta: a reading list", "vite-react", Agents.None),
            new AgentMessage("Eta one"), new BuildLog("eta build line"), new AgentMessage("Eta two"));
        var page = await ui.NewPageAsync();

        // Hold the new page's circuit back, so the prerendered page is what the browser has.
        await using var circuit = await HeldCircuit.OnAsync(page);
        await page.GotoAsync($"/projects/{id}");
        await circuit.Requested.WaitAsync(TimeSpan.FromSeconds(15));

        await Expect(page.Locator(".project-title h1")).ToContainTextAsync("Project Eta");
        await Expect(page.Locator(".md")).ToHaveTextAsync(["Eta one", "Eta two"]);
        await Expect(page.Locator(".project-list")).ToContainTextAsync("Project Eta");
        await Expect(page.Locator("#follow-up")).ToBeDisabledAsync(); // not before the circuit can take it
        await UiFixture.ShotAsync(page, "12-prerendered-before-circuit");

        // Written after the first response was read and before the circuit subscribes: it must not be lost.
        await ui.Broker.AppendAsync(id, new AgentMessage("Eta three"));
        circuit.Release();

        await Expect(page.Locator("#follow-up")).ToBeEnabledAsync();
        await Expect(page.Locator(".md")).ToHaveTextAsync(["Eta one", "Eta two", "Eta three"]);
        await ui.Broker.AppendAsync(id, new AgentMessage("Eta four"));
        await Expect(page.Locator(".md")).ToHaveTextAsync(["Eta one", "Eta two", "Eta three", "Eta four"]);

        // Interactive: tabs switch, and the build log holds its one line once.
        await page.GetByRole(AriaRole.Tab, new() { Name = "Build log" }).ClickAsync();
        await Expect(page.Locator(".log")).ToContainTextAsync("eta build line");
        Assert.Single(Regex.Matches(await page.Locator(".log").InnerTextAsync(), "eta build line"));
        await page.GetByRole(AriaRole.Tab, new() { Name = "Chat" }).ClickAsync();
        await Expect(page.Locator(".md")).ToHaveTextAsync(["Eta one", "Eta two", "Eta three", "Eta four"]);
    }

    [Fact]
    public async Task A_link_clicked_before_the_circuit_is_up_still_goes_to_its_page()
    {
        var page = await ui.NewPageAsync();
        await using var circuit = await HeldCircuit.OnAsync(page);
        await page.GotoAsync("/");
        await circuit.Requested.WaitAsync(TimeSpan.FromSeconds(15)); // blazor.web.js is running, its circuit not yet up

        await page.GetByRole(AriaRole.Link, new() { Name = "Runners" }).ClickAsync();
        circuit.Release(); // the circuit comes up while the click is being followed
        await Expect(page).ToHaveURLAsync(new Regex("/runners$"));
        await UiFixture.WhenInteractiveAsync(page);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Runners", Exact = true })).ToBeVisibleAsync();
        await Expect(page.Locator("table").First).ToContainTextAsync(FakeBroker.RunnerId);
    }

    [Fact]
    public async Task A_page_reached_by_a_link_before_the_circuit_is_up_stays_when_the_circuit_comes()
    {
        var page = await ui.NewPageAsync();
        await using var circuit = await HeldCircuit.OnAsync(page);
        await page.GotoAsync("/");
        await circuit.Requested.WaitAsync(TimeSpan.FromSeconds(15));

        // The click is followed completely while the first page's circuit is still on its way...
        await page.GetByRole(AriaRole.Link, new() { Name = "Runners" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Runners", Exact = true })).ToBeVisibleAsync();
        // ...then the circuit comes up: the page shown must stay the one the person went to.
        circuit.Release();
        await UiFixture.WhenInteractiveAsync(page);
        await Expect(page).ToHaveURLAsync(new Regex("/runners$"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Runners", Exact = true })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "What do you want to build?" })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_new_project_form_waits_for_the_circuit_and_then_creates_the_project()
    {
        var page = await ui.NewPageAsync();
        await using var circuit = await HeldCircuit.OnAsync(page);
        await page.GotoAsync("/");

        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "What do you want to build?" })).ToBeVisibleAsync();
        await Expect(page.Locator("#prompt")).ToBeDisabledAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Create project" })).ToBeDisabledAsync();
        circuit.Release();

        await page.Locator("#prompt").FillAsync("Project Theta: a habit tracker");
        await page.Locator("#agent").SelectOptionAsync(Agents.None);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create project" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/projects/[0-9a-f-]{36}$"));
        await Expect(page.Locator(".project-title h1")).ToContainTextAsync("Project Theta");
    }

    [Fact]
    public async Task A_conversation_too_long_to_hand_over_still_becomes_live_and_shows_every_event_once()
    {
        // Medium: handed over, but its circuit start message is already over SignalR's default 32 KB.
        // Long: over the hand-over budget, so the circuit reads the log itself.
        var medium = await ui.CreateProjectAsync("Project Iota: a medium conversation");
        var words = string.Join(' ', Enumerable.Repeat("lorem ipsum dolor sit amet", 10));
        await ui.Broker.AppendAsync(medium, Enumerable.Range(1, 60).Select(i => (ProjectEvent)new AgentMessage($"Iota {i}: {words}")).ToArray());
        var longer = await ui.CreateProjectAsync("Project Kappa: a long build log");
        var line = new string('x', 1300);
        await ui.Broker.AppendAsync(longer, [new AgentMessage("Kappa starts"), .. Enumerable.Range(1, 250).Select(i => (ProjectEvent)new BuildLog($"kappa {i:D3} {line}"))]);

        var page = await ui.NewPageAsync();
        foreach (var (id, messages, logLines, name) in new[] { (medium, 60, 0, "Iota"), (longer, 1, 250, "Kappa") })
        {
            await page.GotoAsync($"/projects/{id}");
            await UiFixture.WhenInteractiveAsync(page);
            await Expect(page.Locator(".md")).ToHaveCountAsync(messages);
            if (logLines > 0) await Expect(page.GetByRole(AriaRole.Tab, new() { Name = "Build log" })).ToContainTextAsync(logLines.ToString());
            await ui.Broker.AppendAsync(id, new AgentMessage($"{name} is live"));
            await Expect(page.Locator(".md")).ToHaveCountAsync(messages + 1);
            await Expect(page.Locator(".md").Last).ToHaveTextAsync($"{name} is live");
            await Expect(page.Locator("#follow-up")).ToBeEnabledAsync();
        }
    }

    private HttpClient SignedInClient() =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = true }) { BaseAddress = new Uri(ui.BaseUrl) };

    private static async Task SignInAsync(HttpClient browser)
    {
        using var response = await browser.GetAsync($"/login?t={UiWebFactory.ApiToken}");
        response.EnsureSuccessStatusCode();
        Assert.Contains("What do you want to build?", await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Holds a page's Blazor circuit back (its negotiate request waits), so the prerendered page is what the browser
    /// has; released by <see cref="Release"/> or at the end of the test, whichever comes first.
    /// </summary>
    private sealed class HeldCircuit : IAsyncDisposable
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _requested = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once blazor.web.js asks for its circuit (it is running; the circuit is not up).</summary>
        public Task Requested => _requested.Task;

        public static async Task<HeldCircuit> OnAsync(IPage page)
        {
            var held = new HeldCircuit();
            await page.RouteAsync("**/_blazor/negotiate**", async route =>
            {
                held._requested.TrySetResult();
                await held._released.Task;
                await route.ContinueAsync();
            });
            return held;
        }

        public void Release() => _released.TrySetResult();

        public ValueTask DisposeAsync()
        {
            Release();
            return ValueTask.CompletedTask;
        }
    }
}
