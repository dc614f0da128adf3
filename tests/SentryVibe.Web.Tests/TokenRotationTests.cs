// Rotating the API token ends the browser sessions it opened (the login link), and only those: a session of a password
// stays (docs/accounts.md). A class of its own: it changes the app's token.
using System.Net;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Data;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class TokenRotationTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    [Fact]
    public async Task Rotating_the_api_token_ends_the_sessions_it_opened_and_keeps_password_sessions()
    {
        using var linked = Anonymous();
        using (var login = await linked.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken)))
        {
            Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await linked.GetAsync("/api/account")).StatusCode);

        using var member = Anonymous();
        await SignInWithPasswordAsync(member);
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync("/api/account")).StatusCode);

        var configuration = (IConfigurationRoot)App.Services.GetRequiredService<IConfiguration>();
        try
        {
            configuration["SentryVibe:ApiToken"] = "rotated-token-0123456789abcdef";
            configuration.Reload();

            Assert.Equal(HttpStatusCode.Unauthorized, (await linked.GetAsync("/api/account")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await member.GetAsync("/api/account")).StatusCode);
        }
        finally
        {
            configuration["SentryVibe:ApiToken"] = SentryVibeWebFactory.ApiToken;
            configuration.Reload();
        }
    }

    private async Task SignInWithPasswordAsync(HttpClient client)
    {
        const string password = "a long enough passphrase";
        var email = $"rotation-{Guid.NewGuid():N}@example.test";
        await using (var scope = App.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
            var created = await users.CreateAsync(new User { Id = Guid.CreateVersion7(), UserName = email, Email = email, DisplayName = "Rotation", CreatedAt = DateTimeOffset.UtcNow }, password);
            Assert.True(created.Succeeded, string.Join(" ", created.Errors.Select(e => e.Description)));
        }
        var form = await FormAsync(client, "/login");
        form["_handler"] = "password";
        form["Password.Email"] = email;
        form["Password.Password"] = password;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/login") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Add("Origin", "http://localhost");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
    }

    /// <summary>The antiforgery token of the page's forms (its cookie stays in the client).</summary>
    private static async Task<Dictionary<string, string>> FormAsync(HttpClient client, string path)
    {
        var html = await client.GetStringAsync(path);
        var match = System.Text.RegularExpressions.Regex.Match(html, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"");
        Assert.True(match.Success, "the page has an antiforgery token");
        return new Dictionary<string, string> { ["__RequestVerificationToken"] = System.Net.WebUtility.HtmlDecode(match.Groups[1].Value) };
    }
}
