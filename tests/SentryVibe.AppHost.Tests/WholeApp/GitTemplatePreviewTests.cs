using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CliWrap;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>
/// A project from a git repository (here a local one) instead of a built-in template, whose dev server echoes the
/// request it gets through the relay: it must see a plain local request — Host and Origin <c>localhost</c> and
/// no forwarded host, which Next.js would take as a cross-site Server Action and refuse.
/// </summary>
[Collection(WholeAppCollection.Name)]
public sealed class GitTemplatePreviewTests(RunningAppFixture fixture) : IDisposable
{
    private const string EchoServer = """
        require('http').createServer((req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(req.headers));
        }).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('echo listening on ' + process.env.PORT));
        """;

    private readonly string _template = Directory.CreateTempSubdirectory("sentryvibe-git-template-").FullName;

    [Fact]
    public async Task A_git_template_runs_and_its_dev_server_sees_a_plain_local_request_through_the_relay()
    {
        File.WriteAllText(Path.Combine(_template, "package.json"), """{ "name": "echo", "private": true, "scripts": { "dev": "node server.js" } }""");
        File.WriteAllText(Path.Combine(_template, "server.js"), EchoServer);
        await Git("init", "-q");
        await Git("add", ".");
        await Git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "echo template");

        using var api = fixture.App.CreateApiClient();
        var created = await api.PostAsJsonAsync("/api/projects", new { prompt = "Echo the request", agent = "none", templateUrl = _template });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();

        var previewUrl = await Eventually.WaitAsync(async () =>
        {
            var p = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
            Assert.NotEqual("failed", p.GetProperty("status").GetString());
            var dev = p.GetProperty("devServer");
            return p.GetProperty("status").GetString() == "ready" && dev.GetProperty("status").GetString() == "running"
                ? dev.GetProperty("previewUrl").GetString() : null;
        }, TimeSpan.FromMinutes(2), "the git-template project to be ready with its dev server running");
        var preview = new Uri(previewUrl!);

        using var http = LoopbackHttp.Create();
        using var request = new HttpRequestMessage(HttpMethod.Get, preview);
        request.Headers.TryAddWithoutValidation("Origin", $"{preview.Scheme}://{preview.Authority}");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", "edge.example.com"); // as a proxy in front of the broker adds
        request.Headers.TryAddWithoutValidation("Forwarded", "host=edge.example.com;proto=https");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = await response.Content.ReadFromJsonAsync<Dictionary<string, string>>();

        // A plain local request, without a port: where the dev server listens is the runner's to know (docs/runner-protocol.md).
        Assert.Equal("localhost", seen!["host"]);
        Assert.Equal("http://localhost", seen["origin"]);
        Assert.False(seen.ContainsKey("x-forwarded-host"), "x-forwarded-host reached the dev server");
        Assert.False(seen.ContainsKey("forwarded"), "forwarded reached the dev server");
        Assert.DoesNotContain(seen.Values, v => v.Contains(fixture.App.Contract.ApiToken, StringComparison.Ordinal));

        var project = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
        Assert.Equal("git", project.GetProperty("templateId").GetString());
    }

    [Theory]
    [InlineData("""{"prompt":"x","templateUrl":"not a repository"}""")]
    [InlineData("""{"prompt":"x","templateUrl":"relative/path"}""")]
    [InlineData("""{"prompt":"x","templateUrl":"https://example.com/a.git","templateId":"vite-react"}""")]
    public async Task A_bad_template_url_is_400_naming_the_field(string json)
    {
        using var api = fixture.App.CreateApiClient();
        using var response = await api.PostAsync("/api/projects", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("templateUrl", out _));
    }

    private Task Git(params string[] args) => Cli.Wrap("git").WithArguments(args).WithWorkingDirectory(_template).ExecuteAsync();

    public void Dispose()
    {
        try { Directory.Delete(_template, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
