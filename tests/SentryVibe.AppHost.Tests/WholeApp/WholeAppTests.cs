using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>The running system, seen from outside through the design's public contract.</summary>
[Collection(WholeAppCollection.Name)]
public sealed class WholeAppTests(RunningAppFixture fixture)
{
    private RunningApp App => fixture.App;

    [Fact]
    public void The_contract_file_is_private_to_the_user_and_names_the_running_services()
    {
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(App.ContractFile));
        }
        Assert.StartsWith("http://localhost:", App.Contract.WebUrl);
        Assert.StartsWith("http://localhost:", App.Contract.BrokerUrl);
        Assert.False(string.IsNullOrWhiteSpace(App.Contract.ApiToken));
        Assert.Equal($"preview.localhost:{new Uri(App.Contract.BrokerUrl).Port}", App.Contract.PreviewDomain);
    }

    [Theory]
    [InlineData("web")]
    [InlineData("broker")]
    public async Task Every_service_answers_health_and_alive(string service)
    {
        using var client = new HttpClient { BaseAddress = new Uri(service == "web" ? App.Contract.WebUrl : App.Contract.BrokerUrl) };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/alive")).StatusCode);
    }

    [Theory]
    [InlineData("/api/projects")]
    [InlineData("/api/templates")]
    [InlineData("/api/runners")]
    public async Task The_api_refuses_a_request_without_the_token(string path)
    {
        using var client = App.CreateApiClient(authenticated: false);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(path)).StatusCode);
    }

    [Fact]
    public async Task The_api_refuses_a_wrong_token()
    {
        using var client = App.CreateApiClient(authenticated: false);
        client.DefaultRequestHeaders.Authorization = new("Bearer", "not-" + App.Contract.ApiToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/projects")).StatusCode);
    }

    [Fact]
    public async Task A_created_project_is_201_and_can_be_read_back()
    {
        using var client = App.CreateApiClient();
        var created = await client.PostAsJsonAsync("/api/projects", new { prompt = "Create a React todo app", agent = "none" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var project = await created.Content.ReadFromJsonAsync<JsonElement>();
        var id = project.GetProperty("id").ToString();
        Assert.False(string.IsNullOrWhiteSpace(project.GetProperty("slug").GetString()));

        var read = await client.GetAsync($"/api/projects/{id}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var body = await read.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(id, body.GetProperty("id").ToString());
        Assert.Equal("Create a React todo app", body.GetProperty("prompt").GetString());
        Assert.Contains(body.GetProperty("status").GetString(), new[] { "pending", "building", "ready", "failed", "cancelled" });

        var list = await client.GetFromJsonAsync<JsonElement>("/api/projects");
        Assert.Contains(list.EnumerateArray(), p => p.GetProperty("id").ToString() == id);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"prompt":""}""")]
    [InlineData("""{"prompt":"   "}""")]
    [InlineData("""{"prompt":"Create a React todo app","agent":"gpt-9"}""")]
    [InlineData("""{"prompt":"Create a React todo app","templateId":"no-such-template"}""")]
    [InlineData("""{"prompt":""")]
    [InlineData("[]")]
    public async Task Bad_project_input_is_400_with_a_problem_body(string json)
    {
        using var client = App.CreateApiClient();
        var response = await client.PostAsync("/api/projects", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
    }
}
