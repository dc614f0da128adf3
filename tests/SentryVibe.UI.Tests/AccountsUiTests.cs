// Accounts in Chromium (docs/accounts.md): an invitation link makes one account, sign-up, sign-out and password
// sign-in, a wrong password in words, what a member does not see, personal tokens, and a passkey that registers on the
// account page and signs in, through Chromium's virtual authenticator (the DevTools protocol's WebAuthn domain).
using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace SentryVibe.UI.Tests;

[Collection(UiCollection.Name)]
public sealed class AccountsUiTests(UiFixture ui)
{
    private const string Password = "a long enough passphrase";
    private const string Home = "What do you want to build?";

    /// <summary>An invitation made through the API with the owner's token (the account page's form is tested too).</summary>
    private async Task<string> InvitationPathAsync()
    {
        using var client = new HttpClient { BaseAddress = new Uri(ui.BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", UiWebFactory.ApiToken);
        using var response = await client.PostAsync("/api/account/invitations", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("path").GetString()!;
    }

    private async Task<IPage> NewPageAsync(string? baseUrl = null)
    {
        var context = await ui.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseUrl ?? ui.BaseUrl, ViewportSize = new() { Width = 1440, Height = 900 } });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    private static async Task SignUpAsync(IPage page, string link, string email, string name)
    {
        await page.GotoAsync(link);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Create your account" })).ToBeVisibleAsync();
        await page.GetByLabel("E-mail").FillAsync(email);
        await page.GetByLabel("Your name").FillAsync(name);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = Home })).ToBeVisibleAsync();
        await UiFixture.WhenInteractiveAsync(page);
        await Expect(page.Locator("#signed-in-name")).ToHaveTextAsync(name);
    }

    private static async Task SignOutAsync(IPage page)
    {
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
    }

    private static async Task PasswordSignInAsync(IPage page, string email, string password)
    {
        await page.GetByLabel("E-mail").FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
    }

    [Fact]
    public async Task An_invite_link_works_once_and_its_account_signs_out_and_in_with_a_password()
    {
        // The owner makes the link on the account page and copies it.
        var owner = await ui.NewPageAsync();
        await Expect(owner.Locator("#signed-in-name")).ToHaveTextAsync("Owner");
        await owner.Locator("#signed-in-name").ClickAsync();
        await Expect(owner.GetByRole(AriaRole.Heading, new() { Name = "Invitations" })).ToBeVisibleAsync();
        await owner.GetByPlaceholder("Note for yourself").FillAsync("for Dana");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Make invitation link" }).ClickAsync();
        var linkText = owner.Locator("#invitation-link");
        await Expect(linkText).ToContainTextAsync("/signup?code=svi_");
        await UiFixture.ShotAsync(owner, "20-account-invitation");
        var link = (await linkText.TextContentAsync())!.Trim();

        var dana = await NewPageAsync();
        await SignUpAsync(dana, link, "dana@example.com", "Dana");
        await UiFixture.ShotAsync(dana, "21-signed-up");

        // Sign out, a wrong password in words, then the right one.
        await SignOutAsync(dana);
        await PasswordSignInAsync(dana, "dana@example.com", "not the password at all");
        await Expect(dana.GetByRole(AriaRole.Alert)).ToHaveTextAsync("That e-mail and password do not match.");
        await UiFixture.ShotAsync(dana, "22-wrong-password");
        await PasswordSignInAsync(dana, "dana@example.com", Password);
        await Expect(dana.GetByRole(AriaRole.Heading, new() { Name = Home })).ToBeVisibleAsync();
        await Expect(dana.Locator("#signed-in-name")).ToHaveTextAsync("Dana");

        // The same link again, in another browser: refused, no form, no account.
        var late = await NewPageAsync();
        await late.GotoAsync(link);
        await Expect(late.GetByRole(AriaRole.Alert)).ToContainTextAsync("already been used");
        await Expect(late.GetByRole(AriaRole.Button, new() { Name = "Create account" })).ToHaveCountAsync(0);
        await using (var db = ui.Db())
        {
            Assert.Equal(1, await db.Users.CountAsync(u => u.DisplayName == "Dana"));
        }

        // The owner's list says who used it.
        await owner.ReloadAsync();
        var row = owner.GetByRole(AriaRole.Row).Filter(new() { HasText = "for Dana" });
        await Expect(row).ToContainTextAsync("Used");
        await Expect(row).ToContainTextAsync("by Dana");
    }

    [Fact]
    public async Task A_password_is_set_and_changed_on_the_account_page_and_the_old_one_stops_working()
    {
        // The owner starts without a password (the login link signs them in) and sets one.
        var owner = await ui.NewPageAsync();
        await owner.GotoAsync("/account");
        var password = owner.Locator("#password");
        await password.GetByLabel("Password", new() { Exact = true }).FillAsync(Password);
        await password.GetByRole(AriaRole.Button, new() { Name = "Set password" }).ClickAsync();
        await Expect(password.GetByRole(AriaRole.Status)).ToContainTextAsync("Password set.");
        await SignOutAsync(owner);
        await PasswordSignInAsync(owner, "owner@localhost", Password);
        await Expect(owner.Locator("#signed-in-name")).ToHaveTextAsync("Owner");

        // A member changes theirs: a wrong current password is explained, the right one works, the old one stops.
        var member = await NewPageAsync();
        await SignUpAsync(member, await InvitationPathAsync(), "gus@example.com", "Gus");
        await member.GotoAsync("/account");
        password = member.Locator("#password");
        await password.GetByLabel("Current password").FillAsync("not my password at all");
        await password.GetByLabel("New password").FillAsync("an even longer passphrase");
        await password.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(password.Locator("#current-password-error")).ToHaveTextAsync("That is not your current password.");
        await password.GetByLabel("Current password").FillAsync(Password);
        await password.GetByLabel("New password").FillAsync("an even longer passphrase");
        await password.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(password.GetByRole(AriaRole.Status)).ToContainTextAsync("Password changed.");
        // Still signed in here.
        await member.ReloadAsync();
        await Expect(member.GetByRole(AriaRole.Heading, new() { Name = "Gus" })).ToBeVisibleAsync();

        await SignOutAsync(member);
        await PasswordSignInAsync(member, "gus@example.com", Password);
        await Expect(member.GetByRole(AriaRole.Alert)).ToHaveTextAsync("That e-mail and password do not match.");
        await PasswordSignInAsync(member, "gus@example.com", "an even longer passphrase");
        await Expect(member.Locator("#signed-in-name")).ToHaveTextAsync("Gus");
    }

    [Fact]
    public async Task A_member_never_sees_the_owners_project_in_the_sidebar_on_its_page_or_through_the_api()
    {
        var id = await ui.CreateProjectAsync("Build the owner's confidential roadmap board");
        var owner = await ui.NewPageAsync();
        await Expect(owner.Locator(".project-list")).ToContainTextAsync("confidential roadmap");

        var member = await NewPageAsync();
        await SignUpAsync(member, await InvitationPathAsync(), "frank@example.com", "Frank");
        await Expect(member.Locator(".project-list")).Not.ToContainTextAsync("confidential");

        // The project's own address: the page a missing project gets, nothing of the owner's in it.
        await member.GotoAsync($"/projects/{id}");
        await Expect(member.GetByRole(AriaRole.Heading, new() { Name = "This project is gone" })).ToBeVisibleAsync();
        Assert.DoesNotContain("confidential", await member.ContentAsync());
        await UiFixture.ShotAsync(member, "24-member-other-users-project");

        // The browser's own session against the API and the event stream: the 404 of a missing id.
        foreach (var path in new[] { $"/api/projects/{id}", $"/api/projects/{id}/events", $"/api/projects/{id}/checkpoints" })
        {
            var answer = await member.Context.APIRequest.GetAsync(path);
            Assert.Equal(404, answer.Status);
            Assert.DoesNotContain("confidential", await answer.TextAsync());
        }
        var stream = await member.Context.APIRequest.GetAsync($"/api/projects/{id}/events", new() { Headers = new Dictionary<string, string> { ["Accept"] = "text/event-stream" } });
        Assert.Equal(404, stream.Status);
    }

    [Fact]
    public async Task A_member_sees_no_invitations_gets_404_from_their_api_and_makes_a_personal_token_shown_once()
    {
        var member = await NewPageAsync();
        await SignUpAsync(member, await InvitationPathAsync(), "erin@example.com", "Erin");
        await member.GotoAsync("/account");
        await Expect(member.GetByRole(AriaRole.Heading, new() { Name = "Erin" })).ToBeVisibleAsync();
        await Expect(member.GetByRole(AriaRole.Heading, new() { Name = "Personal tokens" })).ToBeVisibleAsync();
        await Expect(member.GetByRole(AriaRole.Heading, new() { Name = "Invitations" })).ToHaveCountAsync(0);
        await Expect(member.GetByRole(AriaRole.Button, new() { Name = "Make invitation link" })).ToHaveCountAsync(0);

        // The browser's own session asks the API: the route is not there for a member.
        var api = await member.Context.APIRequest.GetAsync("/api/account/invitations");
        Assert.Equal(404, api.Status);

        await member.GetByPlaceholder("Name, e.g. VS Code").FillAsync("VS Code");
        await member.GetByRole(AriaRole.Button, new() { Name = "Create token" }).ClickAsync();
        var token = member.Locator("#created-personal-token");
        await Expect(token).ToContainTextAsync("svp_");
        var secret = (await token.TextContentAsync())!.Trim();
        await member.Context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"]);
        await member.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        await Expect(member.GetByRole(AriaRole.Button, new() { Name = "Copied" })).ToBeVisibleAsync();
        Assert.Equal(secret, await member.EvaluateAsync<string>("navigator.clipboard.readText()"));
        await UiFixture.ShotAsync(member, "23-account-token", fullPage: true);

        // The token works as a bearer for Erin, and is not on the page once it is reloaded.
        using (var client = new HttpClient { BaseAddress = new Uri(ui.BaseUrl) })
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", secret);
            using var me = await client.GetAsync("/api/account");
            Assert.Contains("Erin", await me.Content.ReadAsStringAsync());
        }
        await member.ReloadAsync();
        await Expect(member.Locator("#created-personal-token")).ToHaveCountAsync(0);
        Assert.DoesNotContain(secret, await member.ContentAsync());

        var row = member.GetByRole(AriaRole.Row).Filter(new() { HasText = "VS Code" });
        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke VS Code" }).ClickAsync();
        await Expect(row).ToContainTextAsync("Revoked");
        using (var client = new HttpClient { BaseAddress = new Uri(ui.BaseUrl) })
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", secret);
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/account")).StatusCode);
        }
    }

    [Fact]
    public async Task The_error_banner_is_hidden_while_the_stylesheet_is_still_on_its_way()
    {
        // A page is in the DOM (and read by assistive tech and by tests) before its stylesheet applies. The banner that
        // says the page lost its circuit was hidden only by app.css, so until that arrived it was shown: the passkey test
        // once found two alerts on the login page, the refusal and this banner, though no error had happened.
        var page = await NewPageAsync();
        var release = new TaskCompletionSource();
        await page.RouteAsync("**/app*.css", async route =>
        {
            await release.Task;
            await route.ContinueAsync();
        });
        // The scripts at the end of the body wait for the stylesheet; the banner above them is parsed already.
        await page.GotoAsync("/login", new() { WaitUntil = WaitUntilState.Commit });
        await page.Locator("#blazor-error-ui").WaitForAsync(new() { State = WaitForSelectorState.Attached });

        await Expect(page.Locator("#blazor-error-ui")).ToBeHiddenAsync(new() { Timeout = 1_000 });
        Assert.Equal(0, await page.GetByRole(AriaRole.Alert).CountAsync());
        release.SetResult();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await Expect(page.Locator("#blazor-error-ui")).ToBeHiddenAsync();

        // When a circuit does fail, blazor.web.js shows the banner by setting its display to block; that still wins.
        await page.EvaluateAsync("() => document.querySelector('#blazor-error-ui').style.display = 'block'");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The page lost its footing.");
    }

    [Fact]
    public async Task A_passkey_registers_on_the_account_page_and_signs_in_on_the_login_page()
    {
        // WebAuthn wants a domain for the relying party: localhost, not 127.0.0.1 (both are secure contexts).
        var local = ui.BaseUrl.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        var page = await NewPageAsync(local);
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("WebAuthn.enable");
        var authenticator = await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
        var authenticatorId = authenticator!.Value.GetProperty("authenticatorId").GetString()!;

        await SignUpAsync(page, local + await InvitationPathAsync(), "finn@example.com", "Finn");
        await page.GotoAsync("/account");
        await Expect(page.GetByText("No passkeys yet.")).ToBeVisibleAsync();
        await page.GetByPlaceholder("Name, e.g. MacBook").FillAsync("Test key");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add a passkey" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "added" })).ToContainTextAsync("Passkey “Test key” added");
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "Test key" })).ToBeVisibleAsync();
        await UiFixture.ShotAsync(page, "24-account-passkey", fullPage: true);

        var credentials = await cdp.SendAsync("WebAuthn.getCredentials", new Dictionary<string, object> { ["authenticatorId"] = authenticatorId });
        Assert.Equal(1, credentials!.Value.GetProperty("credentials").GetArrayLength());
        await using (var db = ui.Db())
        {
            var finn = await db.Users.SingleAsync(u => u.Email == "finn@example.com");
            Assert.Equal(1, await db.Set<Microsoft.AspNetCore.Identity.IdentityUserPasskey<Guid>>().CountAsync(p => p.UserId == finn.Id));
        }

        await SignOutAsync(page);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = Home })).ToBeVisibleAsync();
        await Expect(page.Locator("#signed-in-name")).ToHaveTextAsync("Finn");

        // Removed on the account page, the same passkey (still on the authenticator) signs nobody in.
        await page.GotoAsync("/account");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove Test key" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "removed" })).ToHaveTextAsync("Passkey removed.");
        await Expect(page.GetByText("No passkeys yet.")).ToBeVisibleAsync();
        await SignOutAsync(page);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();
        // The login form's own alert; the page's error banner is role=alert too (and was counted while app.css was
        // still loading, until the banner was made hidden by its own markup: The_error_banner_is_hidden_…).
        await Expect(page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "passkey" })).ToHaveTextAsync(
            "That passkey does not sign in to an account here. Sign in with your password, then add the passkey on your account page.");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
    }
}
