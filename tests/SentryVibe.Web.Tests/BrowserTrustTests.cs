// The browser's side of the trust boundary (docs/security.md): cross-site requests riding on the UI cookie, logout,
// the Secure cookie behind a TLS-terminating proxy, and guessing the token at the login form.
using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class BrowserTrustTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    /// <summary>A browser session: the login link's cookie, kept by the client's cookie container.</summary>
    private async Task<HttpClient> SignedInAsync()
    {
        var client = App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        using var login = await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        return client;
    }

    public static TheoryData<string, string> CrossSite => new()
    {
        { "Origin", "http://evil.example" },
        { "Origin", "http://localhost:8081" }, // another port of the same machine is another origin
        { "Sec-Fetch-Site", "cross-site" },
        { "Sec-Fetch-Site", "same-site" },
        { "Origin", "null" },
        { "", "" }, // neither header: a cookie request must say where it comes from
    };

    [Theory]
    [MemberData(nameof(CrossSite))]
    public async Task A_cross_site_post_with_the_cookie_is_refused_with_403_and_changes_nothing(string header, string value)
    {
        var project = (await CreateProjectAsync(new { prompt = "make a todo app", name = "csrf-" + Guid.NewGuid().ToString("N")[..6] })).GetProperty("id").GetString();
        using var browser = await SignedInAsync();
        var before = await CountRowsAsync();
        var tokens = await CountAsync("runner_tokens");

        (HttpMethod Method, string Path, HttpContent? Body)[] attacks =
        [
            (HttpMethod.Post, $"/api/projects/{project}/messages", JsonContent.Create(new { prompt = "delete everything" })),
            (HttpMethod.Post, $"/api/projects/{project}/dev-server/stop", null),
            (HttpMethod.Post, $"/api/projects/{project}/checkpoints/abc123/restore", null),
            (HttpMethod.Post, $"/api/projects/{project}/dev-server/start", null),
            (HttpMethod.Delete, $"/api/projects/{project}", null),
            (HttpMethod.Post, "/api/runners/tokens", JsonContent.Create(new { name = "attacker" })),
            (HttpMethod.Post, "/logout", null),
            // Blazor's own endpoints: the circuit's negotiate and a server-rendered form post.
            (HttpMethod.Post, "/_blazor/negotiate?negotiateVersion=1", null),
            (HttpMethod.Post, "/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["_handler"] = "login", ["Input.Token"] = "x" })),
        ];
        foreach (var (method, path, body) in attacks)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body };
            if (header.Length > 0) request.Headers.TryAddWithoutValidation(header, value);
            using var response = await browser.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} with {header}: {value} answered {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal(before, await CountRowsAsync());
        Assert.Equal(tokens, await CountAsync("runner_tokens"));
        // Still signed in: the forged logout did nothing.
        using var still = await browser.GetAsync("/api/projects");
        Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    [Theory]
    [InlineData("Origin", "http://localhost")]
    [InlineData("Origin", "https://localhost")] // the browser's side of a TLS-terminating proxy
    [InlineData("Sec-Fetch-Site", "same-origin")]
    public async Task A_same_origin_post_with_the_cookie_works(string header, string value)
    {
        var project = (await CreateProjectAsync(new { prompt = "make a todo app", name = "same-" + Guid.NewGuid().ToString("N")[..6] })).GetProperty("id").GetString();
        using var browser = await SignedInAsync();
        var commands = await CountAsync("commands");

        using var message = new HttpRequestMessage(HttpMethod.Post, $"/api/projects/{project}/messages") { Content = JsonContent.Create(new { prompt = "add a footer" }) };
        message.Headers.TryAddWithoutValidation(header, value);
        using var sent = await browser.SendAsync(message);
        Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);

        using var stop = new HttpRequestMessage(HttpMethod.Post, $"/api/projects/{project}/dev-server/stop");
        stop.Headers.TryAddWithoutValidation(header, value);
        Assert.Equal(HttpStatusCode.Accepted, (await browser.SendAsync(stop)).StatusCode);
        Assert.Equal(commands + 2, await CountAsync("commands"));

        using var logout = new HttpRequestMessage(HttpMethod.Post, "/logout");
        logout.Headers.TryAddWithoutValidation(header, value);
        using var loggedOut = await browser.SendAsync(logout);
        Assert.Equal(HttpStatusCode.Redirect, loggedOut.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/api/projects")).StatusCode);
    }

    [Fact]
    public async Task A_bearer_request_needs_no_origin_even_with_a_cookie_beside_it()
    {
        var project = (await CreateProjectAsync(new { prompt = "make a todo app", name = "bearer-" + Guid.NewGuid().ToString("N")[..6] })).GetProperty("id").GetString();
        using var browser = await SignedInAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/projects/{project}/dev-server/stop");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", SentryVibeWebFactory.ApiToken);
        Assert.Equal(HttpStatusCode.Accepted, (await browser.SendAsync(request)).StatusCode);

        using var api = Api();
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostAsync($"/api/projects/{project}/dev-server/stop", null)).StatusCode);
    }

    [Fact]
    public async Task Logout_by_GET_does_not_sign_out()
    {
        using var browser = await SignedInAsync();
        using var get = await browser.GetAsync("/logout");
        Assert.False(get.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith(".SentryVibe.Auth=;", StringComparison.Ordinal)));
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/projects")).StatusCode);
    }

    [Fact]
    public async Task The_login_link_leaves_the_address_bar_for_a_url_without_the_token()
    {
        using var client = Anonymous();
        using var plain = await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
        Assert.Equal("/", plain.Headers.Location?.AbsolutePath);
        Assert.Equal("", plain.Headers.Location?.Query);
        using var deep = await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken) + "&ReturnUrl=%2Frunners");
        Assert.Equal("/runners", deep.Headers.Location?.AbsolutePath);
        Assert.Equal("", deep.Headers.Location?.Query);
    }

    [Theory]
    [InlineData("127.0.0.1", true)] // the proxy we were told about: its X-Forwarded-Proto counts
    [InlineData("10.9.8.7", false)] // someone else (here: loopback, not on the list) saying "https" is not believed
    public async Task The_cookie_is_Secure_when_a_trusted_proxy_says_the_browser_used_https(string trustedProxy, bool secure)
    {
        await using var web = new SentryVibeWebFactory(new Dictionary<string, string?>
        {
            ["ConnectionStrings:sentryvibe"] = ConnectionString,
            ["SentryVibe:TrustedProxies:0"] = trustedProxy,
        });
        web.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        web.StartServer();
        var baseUrl = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(baseUrl) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(".SentryVibe.Auth=", StringComparison.Ordinal));
        Assert.Equal(secure, cookie.Contains("; secure", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Guessing_tokens_is_answered_429_after_the_limit_and_then_even_the_right_token_waits()
    {
        await using var web = new SentryVibeWebFactory(new Dictionary<string, string?>
        {
            ["ConnectionStrings:sentryvibe"] = ConnectionString,
            ["SentryVibe:LoginAttemptsPerMinute"] = "5",
        });
        using var client = web.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        // Signing in successfully costs nothing.
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(HttpStatusCode.Redirect, (await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken))).StatusCode);
        }
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"/login?t=guess-{i}-aaaaaaaaaaaaaaaa")).StatusCode);
        }
        using var sixth = await client.GetAsync("/login?t=guess-6-aaaaaaaaaaaaaaaa");
        Assert.Equal(HttpStatusCode.TooManyRequests, sixth.StatusCode);
        Assert.Contains("Too many sign-in attempts", await sixth.Content.ReadAsStringAsync());

        using var right = await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
        Assert.False(right.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith(".SentryVibe.Auth=", StringComparison.Ordinal)));
    }
}
