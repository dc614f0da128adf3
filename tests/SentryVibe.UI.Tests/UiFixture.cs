// The whole stage for browser tests: Postgres, the real Web app on a loopback Kestrel port, a stand-in preview server,
// a headless Chromium, and a fake broker that writes events the way the real one does.
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.UI.Tests;

public sealed class UiWebFactory(string connectionString) : WebApplicationFactory<Program>
{
    public const string ApiToken = "ui-test-api-token-5b8e2f7a9c1d3e4f";
    public const string BrokerUrl = "ws://broker.test:5100/runner";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:sentryvibe", connectionString);
        builder.UseSetting("SentryVibe:ApiToken", ApiToken);
        builder.UseSetting("SentryVibe:BrokerUrl", BrokerUrl);
        builder.UseSetting("SentryVibe:DefaultRunnerId", FakeBroker.RunnerId);
        builder.UseSetting("SentryVibe:ExpiryScanInterval", "01:00:00");
    }
}

public sealed class UiFixture : IAsyncLifetime
{
    private readonly PostgresFixture _postgres = new();
    private UiWebFactory? _web;
    private WebApplication? _preview;
    private IPlaywright? _playwright;

    public string BaseUrl { get; private set; } = "";
    public string PreviewUrl { get; private set; } = "";
    public string ConnectionString { get; private set; } = "";
    public IBrowser Browser { get; private set; } = null!;
    public FakeBroker Broker { get; private set; } = null!;

    public static string Artifacts { get; } = Path.Combine(AppContext.BaseDirectory, "artifacts");
    public const string SharedShots = "/tmp/ui-shots";

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        ConnectionString = await _postgres.CreateDatabaseAsync();

        _web = new UiWebFactory(ConnectionString);
        _web.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _web.StartServer();
        BaseUrl = _web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');

        // The "dev server" whose page the preview iframe shows.
        var previewBuilder = WebApplication.CreateSlimBuilder();
        previewBuilder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _preview = previewBuilder.Build();
        _preview.MapGet("/", () => Results.Content(
            "<!doctype html><html><head><title>Todos</title></head><body style=\"font-family:sans-serif;padding:2rem\">" +
            "<h1>Todo app is running</h1><ul><li>Buy milk</li><li>Ship SentryVibe</li></ul></body></html>", "text/html"));
        await _preview.StartAsync();
        PreviewUrl = _preview.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";

        Broker = new FakeBroker(ConnectionString);
        await Broker.StartAsync();

        Directory.CreateDirectory(Artifacts);
        Directory.CreateDirectory(SharedShots);
        Assertions.SetDefaultExpectTimeout(15_000);
        (_playwright, Browser) = await SentryVibe.Testing.Chromium.LaunchAsync();
    }

    /// <summary>A fresh browser context, signed in through the login link when <paramref name="signIn"/>.</summary>
    public async Task<IPage> NewPageAsync(bool signIn = true, ColorScheme scheme = ColorScheme.Light, int width = 1440, int height = 900)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = BaseUrl,
            ViewportSize = new ViewportSize { Width = width, Height = height },
            ColorScheme = scheme,
        });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        if (signIn)
        {
            await page.GotoAsync($"/login?t={UiWebFactory.ApiToken}");
            await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "What do you want to build?" })).ToBeVisibleAsync();
            // A click that lands while the circuit replaces the prerendered page can hit an element on its way out.
            await WhenInteractiveAsync(page);
        }
        return page;
    }

    /// <summary>
    /// Waits for the circuit to take over the prerendered page (MainLayout drops the disabled fieldset then): a
    /// measurement taken before could land on an element that is being replaced.
    /// </summary>
    public static Task WhenInteractiveAsync(IPage page) => Assertions.Expect(page.Locator("fieldset.prerendered")).ToHaveCountAsync(0);

    public static async Task ShotAsync(IPage page, string name, bool fullPage = false)
    {
        var path = Path.Combine(Artifacts, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = fullPage });
        File.Copy(path, Path.Combine(SharedShots, name + ".png"), overwrite: true);
    }

    /// <summary>A project created through the public API, as the VS Code extension would.</summary>
    public async Task<Guid> CreateProjectAsync(string prompt, string agent = Agents.None)
    {
        using var client = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", UiWebFactory.ApiToken);
        var response = await client.PostAsync("/api/projects", new StringContent(
            JsonSerializer.Serialize(new { prompt, templateId = "vite-react", agent, runnerId = FakeBroker.RunnerId }),
            System.Text.Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("id").GetGuid();
    }

    public SentryVibeDb Db() => new(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(ConnectionString).Options);

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        if (Broker is not null) await Broker.DisposeAsync();
        if (_preview is not null) await _preview.DisposeAsync();
        if (_web is not null) await _web.DisposeAsync();
        await _postgres.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class UiCollection : ICollectionFixture<UiFixture>
{
    public const string Name = "ui";
}
