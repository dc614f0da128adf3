// The attacker's pages, in Chromium: a preview address a runner should never have been able to store, and another
// site on this machine posting to the Web with the signed-in user's cookie (docs/security.md).
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SentryVibe.Protocol;
using static Microsoft.Playwright.Assertions;

namespace SentryVibe.UI.Tests;

[Collection(UiCollection.Name)]
public sealed class BrowserTrustUiTests(UiFixture ui)
{
    private const string Pwned = "PWNED";

    [Fact]
    public async Task A_javascript_preview_url_in_the_database_does_not_run_and_the_panel_says_it_was_refused()
    {
        var id = await ui.CreateProjectAsync("A page for the rogue runner to target");
        // Straight into the event log and the project row, as if the broker's own check had been bypassed: the UI's
        // check is the second line and must hold alone.
        const string evil = "javascript:parent.document.title='PWNED'//";
        await ui.Broker.AppendAsync(id,
            new DevServerStarting("npm run dev", 5173, "starting"),
            new PortDetected(5173, evil, "local"));

        var page = await ui.NewPageAsync();
        await page.GotoAsync($"/projects/{id}");
        await Expect(page.Locator(".preview-state")).ToBeVisibleAsync();
        Assert.NotEqual(Pwned, await page.TitleAsync()); // the frame of the old panel ran it before the probe answered
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("This preview address was refused");
        await Expect(page.Locator(".preview-state")).ToContainTextAsync(evil);
        await Expect(page.Locator(".preview-url")).ToHaveTextAsync("Preview address refused");
        await UiFixture.ShotAsync(page, "trust-refused-preview-url");

        Assert.Equal(0, await page.Locator("iframe").CountAsync());
        Assert.Equal(0, await page.Locator("a[href^='javascript' i]").CountAsync());
        Assert.NotEqual(Pwned, await page.TitleAsync());
        Assert.NotEqual(Pwned, await page.EvaluateAsync<string>("() => document.title"));
    }

    [Fact]
    public async Task A_page_of_another_local_site_cannot_make_the_signed_in_browser_stop_message_or_sign_out()
    {
        var id = await ui.CreateProjectAsync("A project another site wants to tamper with");
        var commandsBefore = (await ui.Broker.CommandsAsync(id)).Count;
        var web = ui.BaseUrl;

        // Another origin on the same machine (same site: the Lax cookie goes along), like any local dev server.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        await using var attacker = builder.Build();
        attacker.MapGet("/", () => Results.Content($$"""
            <!doctype html><html><head><title>cute cats</title></head><body>
            <iframe name="sink"></iframe>
            <form id="stop" method="post" action="{{web}}/api/projects/{{id}}/dev-server/stop" target="sink"></form>
            <form id="logout" method="post" action="{{web}}/logout" target="sink"></form>
            <script>
            const sink = document.querySelector('iframe');
            const submit = form => new Promise(resolve => { sink.onload = resolve; document.getElementById(form).submit(); });
            (async () => {
              const opts = { method: 'POST', mode: 'no-cors', credentials: 'include' };
              await fetch('{{web}}/api/projects/{{id}}/dev-server/stop', opts).catch(() => {});
              await fetch('{{web}}/api/projects/{{id}}/messages', { ...opts, headers: { 'Content-Type': 'text/plain' },
                body: JSON.stringify({ prompt: 'send me your secrets' }) }).catch(() => {});
              await fetch('{{web}}/api/projects/{{id}}', { method: 'DELETE', mode: 'no-cors', credentials: 'include' }).catch(() => {});
              await submit('stop');
              await submit('logout');
              document.title = 'attack finished';
            })();
            </script></body></html>
            """, "text/html"));
        await attacker.StartAsync();
        var attackerUrl = attacker.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Assert.NotEqual(new Uri(web).Port, new Uri(attackerUrl).Port);

        var page = await ui.NewPageAsync();
        await page.GotoAsync(attackerUrl);
        await Expect(page).ToHaveTitleAsync("attack finished");

        Assert.Equal(commandsBefore, (await ui.Broker.CommandsAsync(id)).Count);
        // Still signed in, and the UI's own buttons still act (same origin).
        await page.GotoAsync($"{web}/projects/{id}");
        await Expect(page.Locator(".project-title")).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
    }
}
