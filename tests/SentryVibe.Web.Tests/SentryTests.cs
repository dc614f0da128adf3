// Sentry as the original had it, through the real service defaults every service uses, against a real HTTP ingest
// stand-in: with SENTRY_DSN set, errors and traces arrive (alongside OpenTelemetry); without it, nothing is registered.
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class SentryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly ActivitySource DeliverySource = new("SentryVibe.Broker");

    [Fact]
    public void Without_SENTRY_DSN_nothing_of_Sentry_is_registered_and_OpenTelemetry_stays()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "sentryvibe-runner" });
        builder.Configuration["SENTRY_DSN"] = null;
        builder.AddServiceDefaults();
        using var host = builder.Build();

        Assert.Null(host.Services.GetService<Sentry.IHub>());
        Assert.DoesNotContain(host.Services.GetServices<IHostedService>(), s => s.GetType().Name.Contains("Sentry", StringComparison.Ordinal));
        Assert.NotNull(host.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task The_stand_in_ingest_keeps_serving_after_a_sender_drops_a_request_halfway()
    {
        // The whole-app tests stop and kill services; one killed while sending to Sentry must not end the ingest for
        // every later test (it did: SentryReportingTests then waited 60 s for items that were never read).
        await using var ingest = new SentryIngest();
        for (var i = 0; i < 3; i++)
        {
            using var dropped = new System.Net.Sockets.TcpClient();
            await dropped.ConnectAsync(System.Net.IPAddress.Loopback, ingest.Port);
            await dropped.GetStream().WriteAsync(System.Text.Encoding.ASCII.GetBytes(
                "POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{\"event_id\":"));
            dropped.Client.LingerState = new System.Net.Sockets.LingerOption(true, 0); // a reset, as a killed process leaves
        }

        using var http = new HttpClient { Timeout = Timeout };
        using var sent = await http.PostAsync($"http://127.0.0.1:{ingest.Port}/api/1/envelope/",
            new StringContent("{}\n{\"type\":\"event\"}\n{\"message\":\"after\"}\n"));
        Assert.Equal(System.Net.HttpStatusCode.OK, sent.StatusCode);
        Assert.Contains(ingest.Items, item => item.Type == "event");
    }

    [Fact]
    public async Task A_generic_host_like_the_runner_reports_errors_and_its_activities_as_transactions()
    {
        await using var ingest = new SentryIngest();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "sentryvibe-runner" });
        builder.Configuration["SENTRY_DSN"] = ingest.Dsn;
        builder.AddServiceDefaults();
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            host.Services.GetRequiredService<ILogger<SentryTests>>().LogError(new InvalidOperationException("agent crashed: boom"), "Build failed");
            using var source = new ActivitySource("SentryVibe.Runner");
            string traceId;
            using (var activity = source.StartActivity("execute command", ActivityKind.Consumer))
            {
                traceId = activity!.TraceId.ToHexString();
                using (source.StartActivity("checkpoint")) { }
            }

            var error = await Eventually.WaitAsync(() => Task.FromResult(ingest.Items.FirstOrDefault(i => i.Type == "event" && i.Payload.ToString().Contains("agent crashed: boom"))),
                Timeout, $"the error event; ingest has:\n{ingest}");
            Assert.Equal("sentryvibe-runner", error.ServerName);
            var transaction = await Eventually.WaitAsync(() => Task.FromResult(ingest.Items.FirstOrDefault(i => i.Type == "transaction" && i.Transaction == "execute command")),
                Timeout, $"the 'execute command' transaction; ingest has:\n{ingest}");
            Assert.Equal(traceId, transaction.TraceId);
            Assert.Equal("sentryvibe-runner", transaction.Service);
            Assert.Contains("checkpoint", transaction.Payload.GetProperty("spans").ToString());
            Assert.NotNull(host.Services.GetService<TracerProvider>()); // alongside OpenTelemetry, not instead of it
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task A_web_service_reports_request_traces_unhandled_errors_and_its_own_activities()
    {
        await using var ingest = new SentryIngest();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ApplicationName = "SentryVibe.Broker" });
        builder.Configuration["SENTRY_DSN"] = ingest.Dsn;
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddServiceDefaults();
        await using var app = builder.Build();
        app.MapGet("/fine", () => "ok");
        app.MapGet("/deliver", () =>
        {
            // As the broker does inside the runner's long-lived /runner request: a command's own trace, from its row.
            ActivityContext.TryParse("00-5347e4b10c45a1c0a43cce2b68590a1f-2a02626463685934-01", null, out var parent);
            using (DeliverySource.StartActivity("deliver command", ActivityKind.Producer, parent)) { }
            return "delivered";
        });
        app.MapGet("/broken", (HttpContext _) => throw new InvalidOperationException("relay exploded"));
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        Assert.Equal("ok", await http.GetStringAsync("/fine?t=sekrit-login-token"));
        Assert.Equal(500, (int)(await http.GetAsync("/broken")).StatusCode);

        await Eventually.WaitAsync(() => Task.FromResult(ingest.Items.Any(i => i.Type == "event" && i.Payload.ToString().Contains("relay exploded"))),
            Timeout, $"the unhandled error; ingest has:\n{ingest}");
        var request = await Eventually.WaitAsync(() => Task.FromResult(ingest.Items.FirstOrDefault(i => i.Type == "transaction" && i.Transaction == "GET /fine")),
            Timeout, $"the request transaction; ingest has:\n{ingest}");
        Assert.Equal("SentryVibe.Broker", request.Service);
        Assert.DoesNotContain(ingest.Items, i => i.Payload.ToString().Contains("sekrit", StringComparison.Ordinal)); // /login?t=<token>

        await http.GetAsync("/deliver");
        await Eventually.WaitAsync(() => Task.FromResult(ingest.Items.Any(i => i.Type == "transaction" && i.Transaction == "deliver command")),
            Timeout, $"the 'deliver command' transaction; ingest has:\n{ingest}");
        await app.StopAsync();
    }
}
