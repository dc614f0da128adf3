// Signing in with e-mail and password, and starting a passkey sign-in (docs/accounts.md): wrong answers in words,
// guessing slowed per address (LoginThrottle) and per account (Identity's lockout), only local return URLs.
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Data;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class PasswordSignInTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    private const string Password = "a long enough passphrase";
    private static int _users;

    private static async Task<string> UserAsync(IServiceProvider services)
    {
        var email = $"pw{Interlocked.Increment(ref _users)}-{Guid.NewGuid():N}@example.com";
        await using var scope = services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var created = await users.CreateAsync(new User { Id = Guid.CreateVersion7(), UserName = email, Email = email, DisplayName = "Pat", CreatedAt = DateTimeOffset.UtcNow }, Password);
        Assert.True(created.Succeeded, string.Join(" ", created.Errors.Select(e => e.Description)));
        return email;
    }

    private static async Task<HttpResponseMessage> PostLoginAsync(HttpClient client, string handler, Dictionary<string, string> fields, string url = "/login")
    {
        var form = await (await client.GetAsync("/login")).Content.ReadAsStringAsync();
        fields["__RequestVerificationToken"] = Regex.Match(form, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
        fields["_handler"] = handler;
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new FormUrlEncodedContent(fields) };
        request.Headers.Add("Origin", "http://localhost");
        return await client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> SignInAsync(HttpClient client, string email, string password, string url = "/login") =>
        PostLoginAsync(client, "password", new() { ["Password.Email"] = email, ["Password.Password"] = password }, url);

    private static bool SetsSessionCookie(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith(".SentryVibe.Auth=", StringComparison.Ordinal));

    private HttpClient Browser() => App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    [Fact]
    public async Task The_right_password_signs_in_and_only_goes_on_to_a_local_address()
    {
        var email = await UserAsync(App.Services);
        using var client = Browser();
        using var response = await SignInAsync(client, email, Password, "/login?ReturnUrl=%2F%2Fevil.example%2F");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.AbsolutePath);
        Assert.DoesNotContain("evil", response.Headers.Location!.OriginalString);
        Assert.True(SetsSessionCookie(response));
        var me = await JsonAsync(await client.GetAsync("/api/account"));
        Assert.Equal("Pat", me.GetProperty("name").GetString());

        using var deep = Browser();
        using var toRunners = await SignInAsync(deep, email, Password, "/login?ReturnUrl=%2Frunners");
        Assert.Equal("/runners", toRunners.Headers.Location?.AbsolutePath);
    }

    [Fact]
    public async Task A_wrong_password_or_unknown_email_is_refused_in_the_same_words()
    {
        var email = await UserAsync(App.Services);
        using var client = Browser();
        using var wrong = await SignInAsync(client, email, "not the password");
        using var unknown = await SignInAsync(client, "nobody@example.com", Password);
        foreach (var response in new[] { wrong, unknown })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("That e-mail and password do not match.", await response.Content.ReadAsStringAsync());
            Assert.False(SetsSessionCookie(response));
        }
        Assert.DoesNotContain("not the password", await wrong.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Wrong_passwords_are_slowed_per_address_and_then_even_the_right_one_waits()
    {
        await using var web = new SentryVibeWebFactory(new Dictionary<string, string?>
        {
            ["ConnectionStrings:sentryvibe"] = ConnectionString,
            ["SentryVibe:LoginAttemptsPerMinute"] = "3",
        });
        var email = await UserAsync(web.Services);
        using var client = web.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await SignInAsync(client, email, $"guess {i} of many")).StatusCode);
        }
        using var right = await SignInAsync(client, email, Password);
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
        Assert.Contains("Too many sign-in attempts", await right.Content.ReadAsStringAsync());
        Assert.False(SetsSessionCookie(right));
    }

    [Fact]
    public async Task Ten_wrong_passwords_lock_the_account_and_the_page_says_so()
    {
        await using var web = new SentryVibeWebFactory(new Dictionary<string, string?>
        {
            ["ConnectionStrings:sentryvibe"] = ConnectionString,
            ["SentryVibe:LoginAttemptsPerMinute"] = "100",
        });
        var email = await UserAsync(web.Services);
        using var client = web.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        for (var i = 0; i < 10; i++) await SignInAsync(client, email, $"guess {i} of many");
        using var right = await SignInAsync(client, email, Password);
        Assert.Equal(HttpStatusCode.Unauthorized, right.StatusCode);
        Assert.Contains("it is locked for a few minutes", await right.Content.ReadAsStringAsync());
        Assert.False(SetsSessionCookie(right));
    }

    [Fact]
    public async Task Passkey_options_come_only_to_this_sites_pages_and_a_forged_passkey_signs_nobody_in()
    {
        using var client = Browser();
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "/login/passkey-options");
        crossSite.Headers.Add("Origin", "https://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await client.SendAsync(crossSite)).StatusCode);

        using var sameSite = new HttpRequestMessage(HttpMethod.Post, "/login/passkey-options");
        sameSite.Headers.Add("Sec-Fetch-Site", "same-origin");
        using var options = await client.SendAsync(sameSite);
        Assert.Equal(HttpStatusCode.OK, options.StatusCode);
        Assert.False(string.IsNullOrEmpty((await JsonAsync(options)).GetProperty("challenge").GetString()));

        using var forged = await PostLoginAsync(client, "passkey", new()
        {
            ["Passkey.Credential"] = """{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AAAA","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"},"clientExtensionResults":{}}""",
        });
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Contains("That passkey does not sign in to an account here.", await forged.Content.ReadAsStringAsync());
        Assert.False(SetsSessionCookie(forged));
    }
}
