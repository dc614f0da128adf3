using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.DevServer.Tests;

/// <summary>
/// Template code (install scripts, dev servers) runs with the allow-listed environment: the runner's secrets planted
/// in its environment never reach it, while PATH, HOME and the port it is given do (docs/security.md).
/// </summary>
public sealed class DevServerEnvironmentTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Writes its environment to the file named by argv[2], makes node_modules (a finished install).</summary>
    private const string Install = """
        const fs = require('fs');
        fs.writeFileSync(process.argv[2], Object.entries(process.env).map(([k, v]) => `${k}=${v}`).join('\n'));
        fs.mkdirSync('node_modules', { recursive: true });
        """;

    /// <summary>Prints its environment line by line, then serves on $PORT.</summary>
    private const string Server = """
        for (const [k, v] of Object.entries(process.env)) console.log(`env ${k}=${v}`);
        require('http').createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on port ' + process.env.PORT));
        """;

    private readonly TempFolder _folder = new();
    private DevServerHarness _harness = null!;

    public Task InitializeAsync()
    {
        PlantedSecrets.Plant();
        _harness = new DevServerHarness(configure: o => o.InstallCommand = $"node install.js {Path.Combine(_folder.Path, "install-env.txt")}");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        _folder.Dispose();
    }

    [Fact]
    public async Task Install_scripts_and_dev_servers_see_none_of_the_runners_secrets_but_get_their_port()
    {
        _folder.Write("package.json", """{ "name": "env-probe", "scripts": { "dev": "node server.js" } }""");
        _folder.Write("install.js", Install);
        _folder.Write("server.js", Server);
        var project = _harness.Locator.Add(_folder.Path, "node server.js");

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        var serverEnv = string.Join("\n", _harness.Events.For<DevServerLog>(project.ProjectId)
            .Where(l => l.Line.StartsWith("env ", StringComparison.Ordinal)).Select(l => l.Line[4..]));
        var installEnv = File.ReadAllText(Path.Combine(_folder.Path, "install-env.txt"));
        Assert.Empty(PlantedSecrets.FoundIn(serverEnv));
        Assert.Empty(PlantedSecrets.FoundIn(installEnv));
        Assert.Contains($"PORT={detected.Port}", serverEnv.Split('\n'));
        Assert.Contains(serverEnv.Split('\n'), l => l.StartsWith("PATH=", StringComparison.Ordinal));
        Assert.Contains(installEnv.Split('\n'), l => l.StartsWith("HOME=", StringComparison.Ordinal));
    }
}
