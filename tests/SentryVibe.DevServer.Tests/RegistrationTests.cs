using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Previews;

namespace SentryVibe.DevServer.Tests;

public sealed class RegistrationTests
{
    [Theory]
    [InlineData(null, typeof(RelayPreviewUrlProvider))]
    [InlineData("relay", typeof(RelayPreviewUrlProvider))]
    [InlineData("cloudflared", typeof(CloudflaredPreviewUrlProvider))]
    [InlineData("local", typeof(LocalPreviewUrlProvider))]
    public async Task The_preview_provider_follows_configuration(string? provider, Type expected)
    {
        await using var services = Build(provider is null ? [] : new() { ["Preview:Provider"] = provider });

        Assert.IsType(expected, services.GetRequiredService<IPreviewUrlProvider>());
    }

    [Fact]
    public async Task Dev_servers_are_the_control_the_preview_targets_and_hosted_after_the_supervisor()
    {
        await using var services = Build(new() { ["Preview:RelayDomain"] = "preview.example.test", ["Preview:RelayScheme"] = "https" });

        var manager = services.GetRequiredService<DevServerManager>();
        Assert.Same(manager, services.GetRequiredService<IDevServerControl>());
        Assert.Same(manager, services.GetRequiredService<IPreviewTargets>());
        var hosted = services.GetServices<IHostedService>().ToList();
        // The host stops hosted services in reverse order: dev servers first, then the supervisor's sweep.
        Assert.True(hosted.IndexOf(services.GetRequiredService<ProcessSupervisor>()) < hosted.IndexOf(manager));
        var url = await services.GetRequiredService<IPreviewUrlProvider>().StartAsync(Guid.NewGuid(), "abc", 5173, CancellationToken.None);
        Assert.Equal("https://abc.preview.example.test/", url);
    }

    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IProjectLocator>(new TestProjectLocator());
        services.AddSingleton<IEventSink>(new EventCollector());
        services.AddRunnerDevServers(configuration);
        return services.BuildServiceProvider();
    }
}
