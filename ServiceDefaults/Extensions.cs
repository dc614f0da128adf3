// The standard Aspire service defaults: OpenTelemetry, health checks, service discovery, resilience.
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Sentry.AspNetCore;

namespace Microsoft.Extensions.Hosting;

public static class Extensions
{
    private const string HealthEndpointPath = "/health";
    private const string AlivenessEndpointPath = "/alive";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry();
        builder.AddSentryWhenConfigured();
        builder.AddDefaultHealthChecks();
        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter("SentryVibe.*"))
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource("SentryVibe.*")
                .AddSource("StreamJsonRpc")
                .AddSource("Npgsql")
                .AddAspNetCoreInstrumentation(options =>
                    // Health probes would drown the traces that matter.
                    options.Filter = context =>
                        !context.Request.Path.StartsWithSegments(HealthEndpointPath)
                        && !context.Request.Path.StartsWithSegments(AlivenessEndpointPath))
                .AddHttpClientInstrumentation());

        builder.AddOpenTelemetryExporters();
        return builder;
    }

    private static TBuilder AddOpenTelemetryExporters<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var useOtlpExporter = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (useOtlpExporter)
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }
        return builder;
    }

    /// <summary>
    /// With <c>SENTRY_DSN</c> set, errors and traces also go to Sentry, as in the original; OpenTelemetry stays
    /// as it is. Without it nothing changes.
    /// </summary>
    public static TBuilder AddSentryWhenConfigured<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var dsn = builder.Configuration["SENTRY_DSN"] ?? builder.Configuration["Sentry:Dsn"];
        if (string.IsNullOrWhiteSpace(dsn)) return builder;

        void Configure(Sentry.SentryOptions o)
        {
            o.Dsn = dsn;
            o.Environment = builder.Environment.EnvironmentName.ToLowerInvariant();
            o.Release = builder.Configuration["SENTRY_RELEASE"] ?? typeof(Extensions).Assembly.GetName().Version?.ToString();
            o.TracesSampleRate = double.TryParse(builder.Configuration["SENTRY_TRACES_SAMPLE_RATE"], System.Globalization.CultureInfo.InvariantCulture, out var rate) ? rate : 1.0;
            o.SendDefaultPii = false;
            o.ServerName = builder.Environment.ApplicationName;
            o.DefaultTags["service"] = builder.Environment.ApplicationName; // transactions carry no server_name
            // Requests that are no one's work to trace are never sampled (their errors still arrive): health probes (the
            // AppHost's, Railway's) every few seconds, and what a service says is not its own work, such as the broker's
            // preview relay, every module of a user's app, hundreds per page load. Those would fill the SDK's send queue
            // (30 envelopes), which then drops the transactions that matter, and a hosted instance's quota with them.
            o.TracesSampler = context => context.TryGetHttpContext() is { } http && IsUntraced(http) ? 0.0 : null;
            o.SetBeforeSendTransaction(t =>
            {
                ScrubQuery(t.Request);
                return t;
            });
            o.SetBeforeSend(e =>
            {
                ScrubQuery(e.Request);
                return e;
            });
            // "Request starting GET …?t=<token>" lines would travel as breadcrumbs; the request itself is on the event.
            o.SetBeforeBreadcrumb(b => b.Category == "Microsoft.AspNetCore.Hosting.Diagnostics" ? null : b);
        }

        static bool IsUntraced(HttpContext http) =>
            http.Request.Path.StartsWithSegments(HealthEndpointPath) || http.Request.Path.StartsWithSegments(AlivenessEndpointPath)
            || http.RequestServices.GetService<IUntracedRequests>()?.IsUntraced(http) == true;

        // Query strings can carry secrets (/login?t=<api token>): Sentry gets the path only.
        static void ScrubQuery(Sentry.SentryRequest request)
        {
            if (!string.IsNullOrEmpty(request.QueryString)) request.QueryString = "[Filtered]";
            if (request.Url is { } url && url.IndexOf('?', StringComparison.Ordinal) is var q and >= 0) request.Url = url[..q];
        }

        if (builder is WebApplicationBuilder web)
        {
            web.WebHost.UseSentry(o => Configure(o));
        }
        else
        {
            builder.Logging.AddSentry(o => Configure(o));
        }
        builder.Services.AddHostedService<SentryActivityBridge>();
        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        return builder;
    }

    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // Health endpoints are public on purpose: Railway and the AppHost probe them without credentials.
        app.MapHealthChecks(HealthEndpointPath).AllowAnonymous();
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains("live")
        }).AllowAnonymous();
        return app;
    }
}
