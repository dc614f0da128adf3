using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>
/// SENTRY_DSN given to the AppHost reaches Web, Broker and Runner: creating a project shows up in Sentry as the web's
/// request and one trace from the broker's delivery to the runner's execution; health probes and tokens do not.
/// </summary>
[Collection(WholeAppCollection.Name)]
public sealed class SentryReportingTests(RunningAppFixture fixture, ITestOutputHelper output)
{
    private SentryIngest Ingest => fixture.Sentry;

    private async Task WaitForAsync(Func<bool> condition, string what)
    {
        try
        {
            await Eventually.WaitAsync(() => Task.FromResult(condition()), TimeSpan.FromSeconds(60), what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} The ingest has:\n{Ingest}", e);
        }
    }

    [Fact]
    public async Task Web_broker_and_runner_report_their_traces_and_a_command_is_one_trace_from_broker_to_runner()
    {
        // The relay's traffic first: a request on a preview host and a runner's preview socket. Hundreds of them per page
        // load once filled the broker's send queue, which dropped the delivery's transaction this test waits for.
        var marker = "sentry-probe-" + Guid.NewGuid().ToString("N");
        using (var anonymous = LoopbackHttp.Create())
        {
            using var preview = await anonymous.GetAsync($"http://{new string('0', 32)}.{fixture.App.Contract.PreviewDomain}/{marker}");
            Assert.Equal(HttpStatusCode.NotFound, preview.StatusCode);
            using var socket = await anonymous.GetAsync($"{fixture.App.Contract.BrokerUrl.TrimEnd('/')}/runner/preview/{marker}");
            Assert.Equal(HttpStatusCode.NotFound, socket.StatusCode);
        }

        using var client = fixture.App.CreateApiClient();
        var created = await client.PostAsJsonAsync("/api/projects", new { prompt = "Create a React todo app", agent = "none", templateId = "vite-react" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").ToString();

        var ingest = Ingest;
        SentryItem? Execution() => ingest.Items.FirstOrDefault(i => i.Type == "transaction" && i.Service == "sentryvibe-runner"
            && i.Transaction == "execute command" && i.Payload.ToString().Contains(id, StringComparison.Ordinal));
        await WaitForAsync(() => Execution() is not null, $"the runner's 'execute command' transaction for {id}");
        var execution = Execution()!;

        // The delivery ends with the runner's ack and each service sends when its part ends: wait for both.
        await WaitForAsync(() => ingest.Items.Any(i => i.Type == "transaction" && i.Service == "SentryVibe.Broker"
            && i.Transaction == "deliver command" && i.TraceId == execution.TraceId), $"the broker's 'deliver command' in the runner's trace {execution.TraceId}");
        await WaitForAsync(() => ingest.Items.Any(i => i.Type == "transaction" && i.Service == "SentryVibe.Web"
            && i.Transaction?.StartsWith("POST /api/projects", StringComparison.Ordinal) == true), "the web's request transaction");
        Assert.DoesNotContain(ingest.Items, i => i.Type == "transaction" && i.Transaction?.EndsWith("/health", StringComparison.Ordinal) == true);
        // The broker sends in order, so its delivery's transaction arriving means the relay's would have arrived before it.
        Assert.Empty(ingest.Items.Where(i => i.Type == "transaction" && i.Service == "SentryVibe.Broker"
                && (i.Payload.ToString().Contains(marker, StringComparison.Ordinal) || i.Transaction?.StartsWith("GET /runner/preview/", StringComparison.Ordinal) == true))
            .Select(i => i.Transaction));
        foreach (var error in ingest.Items.Where(i => i.Type == "event"))
        {
            output.WriteLine($"error event from {error.Service}: {error.Payload}");
        }
        Assert.DoesNotContain(ingest.Items, i => i.Payload.ToString().Contains(fixture.App.Contract.ApiToken, StringComparison.Ordinal));
    }
}
