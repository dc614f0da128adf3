using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class AuthTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    /// <summary>Every /api route the app maps, read from the endpoint data source so a new route cannot slip through.</summary>
    private List<(string Method, string Path)> ApiRoutes()
    {
        var routes = App.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api", StringComparison.OrdinalIgnoreCase) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => (m, Concrete(e.RoutePattern))))
            .Distinct()
            .ToList();
        return routes;
    }

    private static string Concrete(RoutePattern pattern) =>
        "/" + string.Join("/", pattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
        {
            RoutePatternLiteralPart l => l.Content,
            RoutePatternParameterPart { Name: "id" or "Id" } => Guid.NewGuid().ToString(),
            RoutePatternParameterPart x => x.Name + "-value",
            _ => "",
        }))));

    [Fact]
    public void Every_contract_route_is_mapped()
    {
        var routes = ApiRoutes().Select(r => $"{r.Method} {Regex.Replace(r.Path, "[0-9a-f-]{36}", "{id}")}").ToHashSet();
        string[] expected =
        [
            "GET /api/templates", "GET /api/runners", "GET /api/runners/tokens", "POST /api/runners/tokens", "DELETE /api/runners/tokens/{id}",
            "GET /api/projects", "POST /api/projects", "GET /api/projects/{id}", "DELETE /api/projects/{id}",
            "GET /api/projects/{id}/events", "POST /api/projects/{id}/messages", "POST /api/projects/{id}/dev-server/start",
            "POST /api/projects/{id}/dev-server/stop", "POST /api/projects/{id}/cancel", "GET /api/projects/{id}/checkpoints",
            "POST /api/projects/{id}/checkpoints/cid-value/restore",
            "GET /api/account/invitations", "POST /api/account/invitations", "DELETE /api/account/invitations/{id}",
        ];
        foreach (var route in expected) Assert.Contains(route, routes.Select(r => r.TrimEnd('/')));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token-of-some-length")]
    [InlineData("Bearer ")]
    [InlineData("Basic dXNlcjpwYXNz")]
    public async Task Every_api_route_answers_401_problem_without_the_right_token(string? authorization)
    {
        using var client = Anonymous();
        var routes = ApiRoutes();
        Assert.True(routes.Count >= 15, $"only {routes.Count} /api routes found");
        var before = await CountRowsAsync();
        foreach (var (method, path) in routes)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", authorization);
            if (method is "POST") request.Content = JsonContent.Create(new { prompt = "make a todo app", name = "x" });
            using var response = await client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} answered {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        Assert.Equal(before, await CountRowsAsync());
    }

    [Fact]
    public async Task A_forged_cookie_is_not_a_session()
    {
        using var client = Anonymous();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/projects");
        request.Headers.Add("Cookie", ".SentryVibe.Auth=" + SentryVibeWebFactory.ApiToken);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task The_bearer_token_opens_the_api()
    {
        using var client = Api();
        using var response = await client.GetAsync("/api/templates");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Health_and_alive_need_no_token_and_health_checks_the_database()
    {
        using var client = Anonymous();
        using var health = await client.GetAsync("/health");
        using var alive = await client.GetAsync("/alive");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        var checks = App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckServiceOptions>>();
        Assert.Contains(checks.Value.Registrations, r => r.Name.Contains("SentryVibeDb", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Login_link_with_the_token_sets_an_HttpOnly_SameSite_cookie_and_redirects_home()
    {
        using var client = Anonymous();
        using var response = await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.AbsolutePath);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(".SentryVibe.Auth=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(SentryVibeWebFactory.ApiToken, cookie);

        // The cookie is a session for the API and the pages.
        using var api = await client.GetAsync("/api/projects");
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
        using var home = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        // The signed-in app shell (prerendered, then interactive), not the login form.
        var html = await home.Content.ReadAsStringAsync();
        Assert.Contains("_framework/blazor.web", html);
        Assert.DoesNotContain("id=\"token\"", html);
    }

    [Fact]
    public async Task Login_link_with_a_wrong_token_sets_no_cookie()
    {
        using var client = Anonymous();
        using var response = await client.GetAsync("/login?t=not-the-token-at-all");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(response.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith(".SentryVibe.Auth=", StringComparison.Ordinal)));
        using var api = await client.GetAsync("/api/projects");
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
    }

    [Fact]
    public async Task Login_form_signs_in_with_the_token_and_antiforgery()
    {
        using var client = Anonymous();
        var form = await (await client.GetAsync("/login")).Content.ReadAsStringAsync();
        var antiforgery = Regex.Match(form, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(antiforgery);

        using var wrong = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = antiforgery, ["_handler"] = "login", ["Input.Token"] = "wrong",
        }));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);

        using var withoutAntiforgery = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login", ["Input.Token"] = SentryVibeWebFactory.ApiToken,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, withoutAntiforgery.StatusCode);

        using var right = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = antiforgery, ["_handler"] = "login", ["Input.Token"] = SentryVibeWebFactory.ApiToken,
        }));
        Assert.Equal(HttpStatusCode.Redirect, right.StatusCode);
        using var api = await client.GetAsync("/api/projects");
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);

        using var logoutRequest = new HttpRequestMessage(HttpMethod.Post, "/logout");
        logoutRequest.Headers.Add("Origin", "http://localhost"); // the app's own page (see BrowserTrustTests)
        using var logout = await client.SendAsync(logoutRequest);
        Assert.Equal(HttpStatusCode.Redirect, logout.StatusCode);
        using var after = await client.GetAsync("/api/projects");
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task An_unauthenticated_page_request_redirects_to_login()
    {
        using var client = Anonymous();
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/login", response.Headers.Location?.AbsolutePath);
    }

    /// <summary>Every Blazor page the router can reach, read from the endpoint data source like the API routes.</summary>
    private List<(string Path, bool Anonymous)> PageRoutes() =>
        App.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Components.Endpoints.ComponentTypeMetadata>() is not null)
            .Select(e => (Concrete(e.RoutePattern), e.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAllowAnonymous>() is not null))
            .Distinct()
            .ToList();

    [Fact]
    public async Task Every_page_but_the_login_form_redirects_an_anonymous_visitor_to_login()
    {
        var pages = PageRoutes();
        Assert.Contains(pages, p => p.Path == "/runners");
        Assert.Contains(pages, p => p.Path.StartsWith("/projects/", StringComparison.Ordinal));
        // Signing in, and signing up with an invitation link (the code is checked on the page).
        Assert.Equal(["/login", "/signup"], pages.Where(p => p.Anonymous).Select(p => p.Path).Order());

        using var client = Anonymous();
        foreach (var (path, _) in pages.Where(p => !p.Anonymous))
        {
            using var response = await client.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"GET {path} answered {(int)response.StatusCode}");
            Assert.Equal("/login", response.Headers.Location?.AbsolutePath);
        }
    }

    [Fact]
    public void Only_login_logout_health_and_static_files_are_open_to_anonymous_callers()
    {
        string[] open = ["/login", "/login/passkey-options", "/logout", "/signup", "/health", "/alive"];
        var anonymous = App.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAllowAnonymous>() is not null)
            .Select(e => "/" + (e.RoutePattern.RawText ?? "").TrimStart('/'))
            .Distinct()
            .ToList();
        Assert.Contains("/login", anonymous);
        // Static web assets are files: their last segment has an extension (or is a fingerprinted file pattern).
        var offenders = anonymous.Where(r => !open.Contains(r) && !Path.HasExtension(r.Split('/')[^1])).ToList();
        Assert.True(offenders.Count == 0, "open to anonymous callers: " + string.Join(", ", offenders));
    }

    [Fact]
    public async Task The_login_page_and_static_assets_need_no_session()
    {
        using var client = Anonymous();
        using var login = await client.GetAsync("/login");
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var html = await login.Content.ReadAsStringAsync();
        var css = Regex.Match(html, "href=\"(app[^\"]*\\.css)\"").Groups[1].Value;
        Assert.NotEmpty(css);
        using var asset = await client.GetAsync("/" + css);
        Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
    }

    [Fact]
    public async Task Tokens_never_reach_the_logs()
    {
        using (var client = Anonymous())
        {
            await client.GetAsync("/login?t=" + Uri.EscapeDataString(SentryVibeWebFactory.ApiToken));
            await client.GetAsync("/login?t=wrong-secret-guess-123");
        }
        using (var api = Api())
        {
            await api.GetAsync("/api/projects");
            var created = await api.PostAsJsonAsync("/api/runners/tokens", new { name = "laptop" });
            var token = (await JsonAsync(created)).GetProperty("token").GetString()!;
            Assert.DoesNotContain(App.Logs.Lines, l => l.Contains(token, StringComparison.Ordinal));
        }
        Assert.NotEmpty(App.Logs.Lines);
        Assert.DoesNotContain(App.Logs.Lines, l => l.Contains(SentryVibeWebFactory.ApiToken, StringComparison.Ordinal));
        Assert.DoesNotContain(App.Logs.Lines, l => l.Contains("wrong-secret-guess-123", StringComparison.Ordinal));
    }
}
