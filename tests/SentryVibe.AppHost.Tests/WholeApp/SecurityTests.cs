// The security review (issue 9.3), point by point, against the running system. Points covered closer to the code
// live there: every /api route and page needs a session (Web.Tests AuthTests), the cookie's flags and the login
// form's antiforgery (AuthTests), hashed runner tokens (Web.Tests RunnersApiTests), paths that escape a project or the
// workspace (Runner.Tests WorkspaceTests), body and prompt limits (Web.Tests ProjectsApiTests), 128-bit preview ids
// (Web.Tests SlugTests) and the 404 for an unknown one (PreviewEndToEndTests).

using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

[Collection(WholeAppCollection.Name)]
public sealed class SecurityTests(RunningAppFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private RunningApp App => fixture.App;

    private string BrokerAuthority => new Uri(App.Contract.BrokerUrl).Authority;

    private string RunnerSecret => File.ReadAllText(Path.Combine(App.Home, "runner-secret")).Trim();

    [Fact]
    public async Task Neither_the_api_token_nor_the_runner_secret_nor_a_runner_token_appears_in_any_services_log()
    {
        using var api = App.CreateApiClient();
        await WaitForLocalRunnerOnlineAsync(api);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/projects")).StatusCode);
        var created = await api.PostAsJsonAsync("/api/runners/tokens", new { name = "log-probe" });
        var runnerToken = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
        var previewProbe = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        using (var anonymous = LoopbackHttp.Create())
        {
            // The login link carries the token in its query string: the request log must not print it.
            await anonymous.GetAsync($"{App.Contract.WebUrl}/login?t={Uri.EscapeDataString(App.Contract.ApiToken)}");
            await SendToRunnerLinkAsync(anonymous, runnerToken);
            await SendToRunnerLinkAsync(anonymous, runnerToken[..^1] + "x");
            // A preview id is the only key to a preview: request logs must not print preview host names either.
            await anonymous.GetAsync($"http://{previewProbe}.{App.Contract.PreviewDomain}/secret-path");
        }

        var secrets = new Dictionary<string, string>
        {
            ["api token"] = App.Contract.ApiToken,
            ["runner shared secret"] = RunnerSecret,
            ["runner token"] = runnerToken,
            ["preview id"] = previewProbe,
        };
        var lines = await AllResourceLogLinesAsync();
        Assert.True(lines.Count(l => l.Resource == "runner") > 0 && lines.Count(l => l.Resource == "web") > 0,
            "the resources' console logs were not collected: " + string.Join(", ", lines.Select(l => l.Resource).Distinct()));
        foreach (var (what, secret) in secrets)
        {
            Assert.True(secret.Length >= 16, $"the {what} is too short to search for");
            var leaks = lines.Where(l => l.Content.Contains(secret, StringComparison.Ordinal)).ToList();
            Assert.True(leaks.Count == 0, $"the {what} appears in {string.Join(", ", leaks.Select(l => l.Resource).Distinct())}'s log");
        }
    }

    [Fact]
    public async Task A_runner_token_differing_only_in_its_last_character_is_refused_and_the_database_holds_only_its_hash()
    {
        using var api = App.CreateApiClient();
        var created = await (await api.PostAsJsonAsync("/api/runners/tokens", new { name = "near-miss" })).Content.ReadFromJsonAsync<JsonElement>();
        var token = created.GetProperty("token").GetString()!;
        var id = created.GetProperty("id").GetString()!;
        var nearMiss = token[..^1] + (token[^1] == 'a' ? 'b' : 'a');
        using var http = LoopbackHttp.Create();

        // Past the bearer check an HTTP GET is told the link is a WebSocket (400); before it, 401.
        Assert.Equal(HttpStatusCode.BadRequest, await SendToRunnerLinkAsync(http, token));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendToRunnerLinkAsync(http, nearMiss));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendToRunnerLinkAsync(http, RunnerSecret[..^1] + (RunnerSecret[^1] == 'a' ? 'b' : 'a')));
        Assert.Equal(HttpStatusCode.BadRequest, await SendToRunnerLinkAsync(http, RunnerSecret));

        await using (var db = await OpenDbAsync())
        {
            await using var select = new NpgsqlCommand("""SELECT row_to_json(t)::text, "Hash" FROM runner_tokens t WHERE "Id" = @id""", db);
            select.Parameters.AddWithValue("id", Guid.Parse(id));
            await using var reader = await select.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.DoesNotContain(token, reader.GetString(0));
            Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(token)), (byte[])reader[1]);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync($"/api/runners/tokens/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await SendToRunnerLinkAsync(http, token));
    }

    [Fact]
    public async Task A_stopped_dev_server_gets_the_explanatory_page_and_a_forged_running_one_still_opens_no_connection()
    {
        using var bait = new TcpListener(IPAddress.Loopback, 0);
        bait.Start();
        var baitPort = ((IPEndPoint)bait.LocalEndpoint).Port;
        var (projectId, previewId) = await InsertProjectAsync(DevServer("stopped", baitPort));
        try
        {
            using var http = LoopbackHttp.Create();
            var url = $"http://{previewId}.{App.Contract.PreviewDomain}/";
            using (var stopped = await http.GetAsync(url))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, stopped.StatusCode);
                Assert.Equal("Dev server stopped", stopped.Headers.GetValues("X-SentryVibe-Preview").Single());
            }

            // The database now claims a running dev server on the bait's port. The broker asks the runner for a channel
            // to the project; the runner has no dev server for it and refuses: the port the database names is never dialled.
            await UpdateDevServerAsync(projectId, DevServer("running", baitPort));
            var refused = await Eventually.WaitAsync<PreviewAnswer>(async () =>
            {
                using var response = await http.GetAsync(url);
                var title = response.Headers.TryGetValues("X-SentryVibe-Preview", out var v) ? v.Single() : null;
                return title == "Dev server stopped" ? null : new PreviewAnswer(response.StatusCode, title, await response.Content.ReadAsStringAsync());
            }, Timeout, "the relay to see the forged running state");
            Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
            Assert.Equal("Preview unreachable", refused.Title);
            Assert.Contains("no running dev server", refused.Body);
            Assert.False(bait.Pending(), "the relay connected to a port the runner did not start");
        }
        finally
        {
            await DeleteProjectRowAsync(projectId);
        }
    }

    [Theory]
    [InlineData("127.0.0.1:{bait}")]
    [InlineData("localhost:{bait}")]
    [InlineData("example.com")]
    [InlineData("{id}.example.com")]
    [InlineData("{id}.preview.localhost.example.com")]
    [InlineData("x.{id}.{domain}")]
    [InlineData("{id}:{bait}")]
    public async Task A_host_outside_the_preview_domain_is_proxied_nowhere(string hostPattern)
    {
        using var bait = new TcpListener(IPAddress.Loopback, 0);
        bait.Start();
        var baitPort = ((IPEndPoint)bait.LocalEndpoint).Port;
        var (projectId, previewId) = await InsertProjectAsync(DevServer("running", baitPort));
        try
        {
            var host = hostPattern.Replace("{bait}", baitPort.ToString()).Replace("{id}", previewId).Replace("{domain}", App.Contract.PreviewDomain);
            using var http = LoopbackHttp.Create();
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{BrokerAuthority}/");
            request.Headers.Host = host;
            using var response = await http.SendAsync(request);

            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.False(response.Headers.Contains("X-SentryVibe-Preview"), $"{host} was taken for a preview host");
            Assert.False(bait.Pending(), $"a request for {host} reached another port");
        }
        finally
        {
            await DeleteProjectRowAsync(projectId);
        }
    }

    [Fact]
    public async Task A_prompt_full_of_dot_dot_slashes_is_built_in_a_folder_inside_the_workspace()
    {
        var workspace = Path.GetFullPath(Path.Combine(App.Home, "workspace"));
        var outside = Path.Combine(Path.GetTempPath(), "sentryvibe-escape-" + Guid.NewGuid().ToString("N")[..8]);
        using var api = App.CreateApiClient();
        var prompt = $"../../../..{outside}/../../etc ..\\..\\windows %2e%2e%2f";
        var created = await api.PostAsJsonAsync("/api/projects", new { prompt, templateId = "vite-react", agent = "none" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var project = await created.Content.ReadFromJsonAsync<JsonElement>();
        var id = project.GetProperty("id").GetString();
        try
        {
            var slug = project.GetProperty("slug").GetString()!;
            Assert.Matches("^[a-z0-9][a-z0-9-]*$", slug);

            var path = await Eventually.WaitAsync(async () =>
            {
                var p = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
                Assert.NotEqual("failed", p.GetProperty("status").GetString());
                return p.GetProperty("path").ValueKind == JsonValueKind.String ? p.GetProperty("path").GetString() : null;
            }, TimeSpan.FromMinutes(2), "the runner to report the project's folder");

            var full = Path.GetFullPath(path!);
            Assert.StartsWith(workspace + Path.DirectorySeparatorChar, full);
            Assert.Equal(workspace, Path.GetDirectoryName(full));
            Assert.True(Directory.Exists(full));
            Assert.False(Directory.Exists(outside));
        }
        finally
        {
            // The folder is all this test needs; deleting stops the dev server the build would start.
            await api.DeleteAsync($"/api/projects/{id}");
        }
    }

    [Fact]
    public async Task The_runner_process_listens_on_nothing_but_its_loopback_health_port()
    {
        if (!OperatingSystem.IsLinux()) return; // reads /proc
        var healthPort = App.App.GetEndpoint("runner", "http").Port;
        var listening = ListeningSockets();
        var health = Assert.Single(listening, s => s.Port == healthPort);
        Assert.Equal(IPAddress.Loopback, health.Address);

        var pid = Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _))
            .Single(p => SocketInodes(p!).Contains(health.Inode));
        // The AppHost gave this process RUNNER_ID: it is the runner, not a dev server that happens to share the port.
        Assert.Contains($"RUNNER_ID=local\0", File.ReadAllText($"/proc/{pid}/environ"));

        var own = SocketInodes(pid!);
        var runnerListens = listening.Where(s => own.Contains(s.Inode)).Select(s => $"{s.Address}:{s.Port}").ToList();
        Assert.Equal([$"127.0.0.1:{healthPort}"], runnerListens);
    }

    private sealed record PreviewAnswer(HttpStatusCode StatusCode, string? Title, string Body);

    private sealed record ListeningSocket(IPAddress Address, int Port, string Inode);

    /// <summary>Every TCP socket in LISTEN state (st 0A) in this network namespace, IPv4 and IPv6.</summary>
    private static List<ListeningSocket> ListeningSockets()
    {
        var sockets = new List<ListeningSocket>();
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists))
        {
            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f[3] != "0A") continue;
                var (hex, port) = (f[1].Split(':')[0], Convert.ToInt32(f[1].Split(':')[1], 16));
                // /proc prints addresses as 32-bit words in host (little-endian) order.
                var bytes = Convert.FromHexString(hex);
                for (var i = 0; i < bytes.Length; i += 4) Array.Reverse(bytes, i, 4);
                var address = new IPAddress(bytes);
                if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
                sockets.Add(new ListeningSocket(address, port, f[9]));
            }
        }
        return sockets;
    }

    private static HashSet<string> SocketInodes(string pid)
    {
        var inodes = new HashSet<string>();
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)) inodes.Add(target[8..^1]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a process that just ended
        return inodes;
    }

    private async Task<HttpStatusCode> SendToRunnerLinkAsync(HttpClient http, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{BrokerAuthority}/runner");
        request.Headers.Authorization = new("Bearer", token);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task WaitForLocalRunnerOnlineAsync(HttpClient api) =>
        await Eventually.WaitAsync(async () =>
        {
            var runners = await api.GetFromJsonAsync<JsonElement>("/api/runners");
            return runners.EnumerateArray().Any(r => r.GetProperty("id").GetString() == "local" && r.GetProperty("status").GetString() == "online");
        }, Timeout, "runner 'local' to be online");

    private async Task<List<(string Resource, string Content)>> AllResourceLogLinesAsync()
    {
        var logs = App.App.Services.GetRequiredService<ResourceLoggerService>();
        var model = App.App.Services.GetRequiredService<DistributedApplicationModel>();
        var lines = new List<(string, string)>();
        using var timeout = new CancellationTokenSource(Timeout);
        foreach (var resource in model.Resources.Where(r => r is not ParameterResource))
        {
            await foreach (var batch in logs.GetAllAsync(resource).WithCancellation(timeout.Token))
            {
                lines.AddRange(batch.Select(l => (resource.Name, l.Content)));
            }
        }
        return lines;
    }

    private async Task<NpgsqlConnection> OpenDbAsync()
    {
        var connection = new NpgsqlConnection(await App.App.GetConnectionStringAsync("sentryvibe"));
        await connection.OpenAsync();
        return connection;
    }

    private static string DevServer(string status, int port) =>
        JsonSerializer.Serialize(new { status, port, lastLines = Array.Empty<string>() });

    /// <summary>
    /// A project row on the local runner that the runner itself never built: what the database says about its dev
    /// server is all the relay has to go on.
    /// </summary>
    private async Task<(Guid Id, string PreviewId)> InsertProjectAsync(string devServer)
    {
        var id = Guid.NewGuid();
        var previewId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        await using var db = await OpenDbAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "RunnerId", "Agent", "Todos", "DevServer",
                                  "PreviewId", "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId")
            VALUES (@id, @slug, 'Security probe', 'security probe', 'ready', 'vite-react', 'local', 'none', '[]'::jsonb, @dev::jsonb,
                    @preview, 0, 0, now(), now(), 0)
            """, db);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("slug", "security-probe-" + previewId[..8]);
        insert.Parameters.AddWithValue("dev", devServer);
        insert.Parameters.AddWithValue("preview", previewId);
        await insert.ExecuteNonQueryAsync();
        return (id, previewId);
    }

    private async Task UpdateDevServerAsync(Guid id, string devServer)
    {
        await using var db = await OpenDbAsync();
        await using var update = new NpgsqlCommand("""UPDATE projects SET "DevServer" = @dev::jsonb WHERE "Id" = @id""", db);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("dev", devServer);
        Assert.Equal(1, await update.ExecuteNonQueryAsync());
    }

    private async Task DeleteProjectRowAsync(Guid id)
    {
        await using var db = await OpenDbAsync();
        await using var delete = new NpgsqlCommand("""DELETE FROM projects WHERE "Id" = @id""", db);
        delete.Parameters.AddWithValue("id", id);
        await delete.ExecuteNonQueryAsync();
    }
}
