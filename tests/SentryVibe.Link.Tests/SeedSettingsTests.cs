// A user of the original (TypeScript) runner brings its settings: a broker URL ending in /socket and a .env file in
// the folder the runner starts in. The real `sentryvibe-runner run` links with them to a real broker (README, "Runner").
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class SeedSettingsTests(BrokerEnvironment environment, ITestOutputHelper output) : IClassFixture<BrokerEnvironment>, IDisposable
{
    private readonly List<string> _folders = [];

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _db = environment.Db;
    private readonly BrokerProcess _broker = environment.Broker;

    public void Dispose()
    {
        foreach (var folder in _folders) Directory.Delete(folder, recursive: true);
    }

    private string TempFolder(string prefix)
    {
        var folder = Paths.TempDirectory(prefix);
        _folders.Add(folder);
        return folder;
    }

    private Uri SeedUrl => new($"ws://127.0.0.1:{_broker.Port}{LinkProtocol.SeedRunnerPath}");

    [Fact]
    public async Task A_runner_given_the_original_runners_socket_url_links_to_the_broker()
    {
        var runnerId = "seed-url-" + Guid.NewGuid().ToString("N")[..6];
        var (_, token) = await Tokens.CreateAsync(_db, runnerId);
        var home = TempFolder("seed-url");
        await using var cli = SeedRunnerCli.Start(["--broker", SeedUrl.ToString(), "--token", token, "--id", runnerId], home, workingDirectory: home);

        try
        {
            await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, runnerId) == RunnerStatuses.Online, Wait,
                "the runner to link through the /socket URL");
        }
        finally { output.WriteLine(cli.Output); }
    }

    [Fact]
    public async Task A_dotenv_file_in_the_working_folder_links_the_runner_and_its_secret_is_never_printed()
    {
        var runnerId = "seed-env-" + Guid.NewGuid().ToString("N")[..6];
        var (_, token) = await Tokens.CreateAsync(_db, runnerId);
        var home = TempFolder("seed-env");
        var folder = Directory.CreateDirectory(Path.Combine(home, "project")).FullName;
        await File.WriteAllLinesAsync(Path.Combine(folder, ".env"),
        [
            "# the original runner's settings",
            $"RUNNER_BROKER_URL={SeedUrl}",
            $"export RUNNER_SHARED_SECRET=\"{token}\"",
            $"RUNNER_ID='{runnerId}'",
            $"WORKSPACE_ROOT={Path.Combine(home, "ws")}",
        ]);
        await using var cli = SeedRunnerCli.Start([], home, folder);

        try
        {
            await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, runnerId) == RunnerStatuses.Online, Wait,
                "the runner to link with the .env settings");
        }
        finally { output.WriteLine(cli.Output); }
        Assert.DoesNotContain(token, cli.Output);
        Assert.DoesNotContain(token[4..], cli.Output);
    }
}

/// <summary><c>sentryvibe-runner run</c> with the given flags, started in <c>workingDirectory</c>.</summary>
public sealed class SeedRunnerCli : ChildProcess
{
    private SeedRunnerCli() : base("sentryvibe-runner") { }

    public static SeedRunnerCli Start(string[] flags, string home, string workingDirectory)
    {
        var cli = new SeedRunnerCli();
        cli.Start("dotnet", [Paths.RunnerDll, "run", "--workspace", Path.Combine(home, "ws"), .. flags],
            new Dictionary<string, string> { ["SENTRYVIBE_HOME"] = home, ["DOTNET_gcServer"] = "0", ["HEALTH_PORT"] = "0" }, workingDirectory);
        return cli;
    }
}
