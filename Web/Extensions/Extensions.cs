using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Auth;
using SentryVibe.Web.Services;
using SentryVibe.Web.Ui;

namespace SentryVibe.Web.Extensions;

public static class Extensions
{
    public static IHostApplicationBuilder AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SentryVibeOptions>()
            .BindConfiguration(SentryVibeOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        // Railway (and the seed) say where to listen with PORT.
        if (builder.Configuration[SeedEnvironment.Port] is { Length: > 0 } port && builder is WebApplicationBuilder web)
        {
            web.WebHost.UseUrls($"http://0.0.0.0:{port}");
        }

        // Request lines carry /login?t=<token>: the hosting "Request starting" log would print it.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning);

        builder.Services.AddProblemDetails();
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            // The API speaks the same JSON as the wire and the event log (LinkProtocol.JsonOptions).
            var wire = LinkProtocol.JsonOptions;
            o.SerializerOptions.PropertyNamingPolicy = wire.PropertyNamingPolicy;
            o.SerializerOptions.DefaultIgnoreCondition = wire.DefaultIgnoreCondition;
            o.SerializerOptions.AllowOutOfOrderMetadataProperties = wire.AllowOutOfOrderMetadataProperties;
            foreach (var converter in wire.Converters) o.SerializerOptions.Converters.Add(converter);
        });

        builder.AddSentryVibeAuthentication();
        builder.AddTrustedProxies();
        builder.Services.AddSingleton<LoginThrottle>();
        builder.Services.AddAntiforgery();
        builder.Services.AddCascadingAuthenticationState();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents()
            .AddHubOptions(o => o.MaximumReceiveMessageSize = HandOver.HubMessageLimit);
        builder.Services.AddScoped<HandOver>();

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddScoped<ProjectService>();
        builder.Services.AddSingleton<ScopedServices>();
        builder.Services.AddScoped<ProjectSessions>();
        builder.Services.AddScoped<RunnerDirectory>();
        builder.Services.AddScoped<CommandExpiry>();
        builder.Services.AddSingleton<EventNotifications>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EventNotifications>());
        builder.Services.AddHostedService<CommandExpiryWorker>();
        return builder;
    }

    /// <summary>Brings the schema up to date (creating the database if needed) and makes sure there is an owner, before the app serves anything.</summary>
    public static async Task MigrateDatabaseAsync(this WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<SentryVibeDb>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("SentryVibe.Web.Migrations");
        // A fresh database has no history table, and EF logs reading it as an error (red in the dashboard, an event
        // in Sentry) before it creates it. Creating the database and the table first keeps a first start clean.
        var creator = db.GetService<IRelationalDatabaseCreator>();
        if (!await creator.ExistsAsync()) await creator.CreateAsync();
        await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync();
        var pending = (await db.Database.GetPendingMigrationsAsync()).ToList();
        if (pending.Count > 0) logger.LogInformation("Applying migrations: {Migrations}", string.Join(", ", pending));
        await db.Database.MigrateAsync();
        await app.Services.GetRequiredService<OwnerAccount>().EnsureAsync(app.Services, app.Lifetime.ApplicationStopping);
    }
}
