// Invitations (docs/accounts.md): only the owner makes, lists and withdraws them (anyone else meets the 404 of a route
// that does not exist), and a link makes exactly one account: used, expired or withdrawn, it makes none.
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class InvitationsTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    private const string GoodPassword = "correct horse battery";

    private HttpClient Browser() => App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>The owner makes an invitation through the API; returns its id and code.</summary>
    private async Task<(Guid Id, string Code)> InviteAsync(string? note = null)
    {
        using var api = Api();
        using var response = await api.PostAsJsonAsync("/api/account/invitations", new { note });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await JsonAsync(response);
        var code = body.GetProperty("code").GetString()!;
        Assert.StartsWith("svi_", code);
        Assert.Equal("/signup?code=" + Uri.EscapeDataString(code), body.GetProperty("path").GetString());
        return (body.GetProperty("id").GetGuid(), code);
    }

    /// <summary>Fills in the sign-up page like a browser: its antiforgery token, then the form.</summary>
    private static async Task<HttpResponseMessage> SignUpAsync(HttpClient browser, string code, string email, string password = GoodPassword)
    {
        var url = "/signup?code=" + Uri.EscapeDataString(code);
        using var page = await browser.GetAsync(url);
        var html = await page.Content.ReadAsStringAsync();
        if (!html.Contains("__RequestVerificationToken", StringComparison.Ordinal))
        {
            // A refused link shows no form; a forged post still needs a token, which the login page hands out.
            html = await (await browser.GetAsync("/login")).Content.ReadAsStringAsync();
        }
        var antiforgery = Regex.Match(html, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(antiforgery);
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = antiforgery,
                ["_handler"] = "signup",
                ["Input.Code"] = code,
                ["Input.Email"] = email,
                ["Input.DisplayName"] = "Ana " + email.Split('@')[0],
                ["Input.Password"] = password,
            }),
        };
        request.Headers.Add("Origin", "http://localhost");
        return await browser.SendAsync(request);
    }

    private async Task<bool> UserExistsAsync(string email)
    {
        await using var db = Db();
        return await db.Users.AnyAsync(u => u.NormalizedEmail == email.ToUpperInvariant());
    }

    [Fact]
    public async Task An_invitation_link_makes_one_account_and_signs_it_in()
    {
        var (id, code) = await InviteAsync("for Ana");

        using var ana = Browser();
        using var signedUp = await SignUpAsync(ana, code, "ana@example.com");
        Assert.Equal(HttpStatusCode.Redirect, signedUp.StatusCode);
        Assert.Equal("/", signedUp.Headers.Location?.AbsolutePath);
        var me = await JsonAsync(await ana.GetAsync("/api/account"));
        Assert.Equal("Ana ana", me.GetProperty("name").GetString());
        Assert.False(me.GetProperty("isOwner").GetBoolean());

        // The same link again, in another browser: refused in words, and no second account.
        using var late = Browser();
        using var page = await late.GetAsync("/signup?code=" + Uri.EscapeDataString(code));
        Assert.Equal(HttpStatusCode.Gone, page.StatusCode);
        Assert.Contains("already been used", await page.Content.ReadAsStringAsync());
        Assert.DoesNotContain("Create account", await page.Content.ReadAsStringAsync());
        using var second = await SignUpAsync(late, code, "bob@example.com");
        Assert.Equal(HttpStatusCode.Gone, second.StatusCode);
        Assert.Contains("already been used", await second.Content.ReadAsStringAsync());
        Assert.False(await UserExistsAsync("bob@example.com"));

        await using var db = Db();
        var row = await db.Invitations.SingleAsync(i => i.Id == id);
        var ana1 = await db.Users.SingleAsync(u => u.Email == "ana@example.com");
        Assert.Equal(ana1.Id, row.UsedBy);
        Assert.NotNull(row.UsedAt);
        using var api = Api();
        var listed = (await JsonAsync(await api.GetAsync("/api/account/invitations"))).EnumerateArray().Single(i => i.GetProperty("id").GetGuid() == id);
        Assert.Equal("used", listed.GetProperty("status").GetString());
        Assert.Equal("Ana ana", listed.GetProperty("usedBy").GetString());
    }

    [Fact]
    public async Task Two_sign_ups_racing_on_one_link_make_exactly_one_account()
    {
        var (_, code) = await InviteAsync();
        using var a = Browser();
        using var b = Browser();
        var answers = await Task.WhenAll(SignUpAsync(a, code, "race-a@example.com"), SignUpAsync(b, code, "race-b@example.com"));
        Assert.Single(answers, r => r.StatusCode == HttpStatusCode.Redirect);
        Assert.NotEqual(await UserExistsAsync("race-a@example.com"), await UserExistsAsync("race-b@example.com"));
        foreach (var answer in answers) answer.Dispose();
    }

    [Fact]
    public async Task An_expired_or_withdrawn_link_makes_no_account()
    {
        var (expiredId, expired) = await InviteAsync();
        await using (var db = Db())
        {
            await db.Invitations.Where(i => i.Id == expiredId).ExecuteUpdateAsync(s => s.SetProperty(i => i.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1)));
        }
        var (withdrawnId, withdrawn) = await InviteAsync();
        using (var api = Api())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync($"/api/account/invitations/{withdrawnId}")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await api.DeleteAsync($"/api/account/invitations/{Guid.NewGuid()}")).StatusCode);
            var list = (await JsonAsync(await api.GetAsync("/api/account/invitations"))).EnumerateArray().ToList();
            Assert.Equal("expired", list.Single(i => i.GetProperty("id").GetGuid() == expiredId).GetProperty("status").GetString());
            Assert.Equal("revoked", list.Single(i => i.GetProperty("id").GetGuid() == withdrawnId).GetProperty("status").GetString());
        }

        using var browser = Browser();
        using var late = await SignUpAsync(browser, expired, "late@example.com");
        Assert.Equal(HttpStatusCode.Gone, late.StatusCode);
        Assert.Contains("has expired", await late.Content.ReadAsStringAsync());
        using var gone = await SignUpAsync(browser, withdrawn, "gone@example.com");
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        Assert.Contains("was withdrawn", await gone.Content.ReadAsStringAsync());
        using var made = await SignUpAsync(browser, "svi_made-up-code-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "madeup@example.com");
        Assert.Equal(HttpStatusCode.Gone, made.StatusCode);
        Assert.Contains("not valid", await made.Content.ReadAsStringAsync());

        Assert.False(await UserExistsAsync("late@example.com"));
        Assert.False(await UserExistsAsync("gone@example.com"));
        Assert.False(await UserExistsAsync("madeup@example.com"));
    }

    [Fact]
    public async Task A_sign_up_that_fails_leaves_the_link_usable()
    {
        var (id, code) = await InviteAsync();
        using var browser = Browser();
        using var tooShort = await SignUpAsync(browser, code, "short@example.com", "short");
        Assert.Equal(HttpStatusCode.BadRequest, tooShort.StatusCode);
        Assert.Contains("The password needs at least 10 characters", await tooShort.Content.ReadAsStringAsync());
        Assert.False(await UserExistsAsync("short@example.com"));
        await using (var db = Db())
        {
            Assert.Null((await db.Invitations.SingleAsync(i => i.Id == id)).UsedAt);
        }

        using var fine = await SignUpAsync(browser, code, "short@example.com");
        Assert.Equal(HttpStatusCode.Redirect, fine.StatusCode);
        Assert.True(await UserExistsAsync("short@example.com"));
    }

    [Fact]
    public async Task Only_the_owner_has_invitations_anyone_else_gets_the_404_of_a_missing_route()
    {
        var (ownersId, code) = await InviteAsync("owner's");
        using var member = Browser();
        Assert.Equal(HttpStatusCode.Redirect, (await SignUpAsync(member, code, "member@example.com")).StatusCode);

        // The member's own personal token, made on their session like the account page does.
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "/api/account/tokens") { Content = JsonContent.Create(new { name = "cli" }) };
        tokenRequest.Headers.Add("Origin", "http://localhost");
        using var tokenResponse = await member.SendAsync(tokenRequest);
        Assert.Equal(HttpStatusCode.Created, tokenResponse.StatusCode);
        var token = (await JsonAsync(tokenResponse)).GetProperty("token").GetString()!;
        using var bearer = Anonymous();
        bearer.DefaultRequestHeaders.Authorization = new("Bearer", token);

        using var missing = await bearer.GetAsync("/api/account/no-such-route");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var missingBody = await missing.Content.ReadAsStringAsync();

        var before = await CountAsync("invitations");
        foreach (var client in new[] { member, bearer })
        {
            foreach (var (method, path) in new[]
            {
                (HttpMethod.Get, "/api/account/invitations"),
                (HttpMethod.Post, "/api/account/invitations"),
                (HttpMethod.Delete, $"/api/account/invitations/{ownersId}"),
            })
            {
                using var request = new HttpRequestMessage(method, path);
                request.Headers.Add("Origin", "http://localhost");
                if (method == HttpMethod.Post) request.Content = JsonContent.Create(new { note = "sneaky" });
                using var response = await client.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path} answered {(int)response.StatusCode}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Equal(Normalize(missingBody), Normalize(await response.Content.ReadAsStringAsync()));
            }
        }
        Assert.Equal(before, await CountAsync("invitations"));
        await using var db = Db();
        Assert.Null((await db.Invitations.SingleAsync(i => i.Id == ownersId)).RevokedAt);
    }

    [Fact]
    public async Task A_bad_invitation_request_is_explained()
    {
        using var api = Api();
        using var zero = await api.PostAsJsonAsync("/api/account/invitations", new { expiresInDays = 0 });
        Assert.Equal(HttpStatusCode.BadRequest, zero.StatusCode);
        Assert.Contains("from 1 to 30 days", (await JsonAsync(zero)).GetProperty("errors").GetProperty("expiresInDays")[0].GetString());
        using var longNote = await api.PostAsJsonAsync("/api/account/invitations", new { note = new string('n', 201) });
        Assert.Equal(HttpStatusCode.BadRequest, longNote.StatusCode);
        using var notJson = await api.PostAsync("/api/account/invitations", new StringContent("{", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
    }

    /// <summary>The problem body without its per-request trace id.</summary>
    private static string Normalize(string problem)
    {
        var json = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(problem)!;
        json.Remove("traceId");
        return JsonSerializer.Serialize(json.OrderBy(p => p.Key));
    }
}
