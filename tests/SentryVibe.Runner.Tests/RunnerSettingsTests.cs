// The runner's settings as `run` resolves them (README, "Runner"): explicit flag > environment (real variables over
// the working folder's .env) > runner.json from `login` > default, for every option, read back from the options the
// running runner actually uses (RunnerOptions for the link, WorkspaceOptions for the build).
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Link;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Tests;

public sealed class RunnerSettingsTests : IDisposable
{
    private readonly string _sandbox = Path.Join(Path.GetTempPath(), "sv-settings-tests", Guid.NewGuid().ToString("N")[..12]);

    public RunnerSettingsTests() => Directory.CreateDirectory(_sandbox);

    public void Dispose() => Directory.Delete(_sandbox, recursive: true);

    private const string Host = "(from the host name)";

    /// <summary>
    /// setting, --flag value, environment (<c>NAME=value</c>; <c>.env:</c> lines go to the .env file as written),
    /// whether <c>login</c> stored runner.json (broker ws://login, token login-token, id login-id), expected value.
    /// <c>{sandbox}</c> is this test's folder; SENTRYVIBE_HOME is <c>{sandbox}/home</c> unless a row sets the home.
    /// </summary>
    public static TheoryData<string, string?, string[], bool, string?> Precedence => new()
    {
        { "BrokerUrl", "ws://flag", ["RUNNER_BROKER_URL=ws://env", ".env:RUNNER_BROKER_URL=ws://dotenv"], true, "ws://flag" },
        { "BrokerUrl", null, ["RUNNER_BROKER_URL=ws://env", ".env:RUNNER_BROKER_URL=ws://dotenv"], true, "ws://env" },
        { "BrokerUrl", null, ["Runner__BrokerUrl=ws://section", "RUNNER_BROKER_URL=ws://env"], true, "ws://section" },
        { "BrokerUrl", null, [".env:RUNNER_BROKER_URL=ws://dotenv"], true, "ws://dotenv" },
        { "BrokerUrl", null, ["RUNNER_BROKER_URL="], true, "ws://login" },
        { "BrokerUrl", null, [], false, null },
        { "Token", "flag-token", ["RUNNER_SHARED_SECRET=env-token"], true, "flag-token" },
        { "Token", null, ["RUNNER_SHARED_SECRET=env-token", ".env:RUNNER_SHARED_SECRET=dotenv-token"], true, "env-token" },
        { "Token", null, [".env:export RUNNER_SHARED_SECRET=\"dotenv token\""], true, "dotenv token" },
        { "Token", null, [], true, "login-token" },
        { "Token", null, [], false, null },
        { "Id", "flag-id", ["RUNNER_ID=env-id"], true, "flag-id" },
        { "Id", null, ["RUNNER_ID=env-id"], true, "env-id" },
        { "Id", null, [".env:RUNNER_ID='dotenv-id'"], true, "dotenv-id" },
        { "Id", null, [], true, "login-id" },
        { "Id", null, [], false, Host },
        { "Name", "Flag name", ["Runner__Name=Env name"], true, "Flag name" },
        { "Name", null, ["Runner__Name=Env name"], true, "Env name" },
        { "Name", null, [], true, null },
        { "Workspace", "/flag/ws", ["WORKSPACE_ROOT=/env/ws", "Workspace__Root=/section/ws", "Runner__Workspace=/runner/ws"], true, "/flag/ws" },
        { "Workspace", "/flag/ws", ["WORKSPACE_ROOT=/env/ws"], true, "/flag/ws" },
        { "Workspace", null, ["WORKSPACE_ROOT=/env/ws", "Workspace__Root=/section/ws", "Runner__Workspace=/runner/ws"], true, "/runner/ws" },
        { "Workspace", null, ["WORKSPACE_ROOT=/env/ws", "Workspace__Root=/section/ws"], true, "/section/ws" },
        { "Workspace", null, ["WORKSPACE_ROOT=/env/ws", ".env:WORKSPACE_ROOT=/dotenv/ws"], true, "/env/ws" },
        { "Workspace", null, ["# a comment", ".env:WORKSPACE_ROOT=/dotenv/ws # where projects go"], true, "/dotenv/ws" },
        { "Workspace", null, [], true, Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), "sentryvibe-workspace") },
        { "Home", null, ["SENTRYVIBE_HOME={sandbox}/seed-home", "Runner__Home={sandbox}/runner-home"], false, "{sandbox}/runner-home" },
        { "Home", null, ["SENTRYVIBE_HOME={sandbox}/seed-home", ".env:SENTRYVIBE_HOME={sandbox}/dotenv-home"], false, "{sandbox}/seed-home" },
        { "Home", null, [".env:SENTRYVIBE_HOME={sandbox}/dotenv-home"], false, "{sandbox}/dotenv-home" },
    };

    [Theory]
    [MemberData(nameof(Precedence))]
    public void Each_setting_is_taken_from_the_flag_then_the_environment_then_login_then_the_default(
        string setting, string? flag, string[] environment, bool loggedIn, string? expected)
    {
        string Expand(string s) => s.Replace("{sandbox}", _sandbox);
        var home = Path.Join(_sandbox, "home");
        var variables = new Dictionary<string, string?>();
        var dotEnv = new List<string>();
        foreach (var entry in environment.Select(Expand))
        {
            if (entry.StartsWith(".env:", StringComparison.Ordinal)) { dotEnv.Add(entry[5..]); continue; }
            if (entry.StartsWith('#')) { dotEnv.Add(entry); continue; }
            var (name, value) = (entry[..entry.IndexOf('=')], entry[(entry.IndexOf('=') + 1)..]);
            variables[name.Replace("__", ":")] = value; // as the environment-variable provider names them
        }
        if (setting != "Home") variables[SeedEnvironment.SentryVibeHome] = home;
        var workingDirectory = Directory.CreateDirectory(Path.Join(_sandbox, "cwd")).FullName;
        File.WriteAllLines(Path.Join(workingDirectory, RunnerDotEnv.FileName), dotEnv);
        if (loggedIn) new LoginSettings("ws://login", "login-token", "login-id").Save(home);

        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(variables); // stands for the process environment
        configuration.AddRunnerSettings(new RunnerOptions
        {
            BrokerUrl = setting == "BrokerUrl" ? flag : null,
            Token = setting == "Token" ? flag : null,
            Id = setting == "Id" ? flag : null,
            Name = setting == "Name" ? flag : null,
            Workspace = setting == "Workspace" ? flag : null,
        }, workingDirectory);

        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging();
        services.AddRunnerLink();
        services.AddRunnerWork(configuration);
        using var provider = services.BuildServiceProvider();
        var runner = provider.GetRequiredService<IOptions<RunnerOptions>>().Value;
        var workspace = provider.GetRequiredService<IOptions<WorkspaceOptions>>().Value;

        expected = expected is null ? null : Expand(expected);
        switch (setting)
        {
            case "BrokerUrl": Assert.Equal(expected, runner.BrokerUrl); break;
            case "Token": Assert.Equal(expected, runner.Token); break;
            case "Id": Assert.Equal(expected == Host ? RunnerIds.FromName(Environment.MachineName) : expected, runner.RunnerId); break;
            case "Name": Assert.Equal(expected, runner.Name); break;
            case "Workspace": Assert.Equal(expected, workspace.ResolvedRoot); break;
            case "Home":
                // The link's state and the build's project index live in the same home.
                Assert.Equal(expected, runner.HomeDirectory);
                Assert.Equal(expected, workspace.ResolvedHome);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(setting));
        }
    }

    [Fact]
    public void A_malformed_dotenv_is_refused_naming_the_file_and_the_variable_but_not_its_value()
    {
        File.WriteAllLines(Path.Join(_sandbox, RunnerDotEnv.FileName), ["RUNNER_ID=laptop", "RUNNER_SHARED_SECRET=\"s3cret-value"]);

        var error = Assert.Throws<InvalidDataException>(() => RunnerDotEnv.Read(_sandbox));

        Assert.Contains(Path.Join(_sandbox, RunnerDotEnv.FileName), error.Message);
        Assert.Contains("RUNNER_SHARED_SECRET", error.Message);
        Assert.DoesNotContain("s3cret-value", error.Message);
    }

    [Theory]
    [InlineData("ws://127.0.0.1:5100/socket", "ws://127.0.0.1:5100/runner")]
    [InlineData("wss://broker.example.com/socket", "wss://broker.example.com/runner")]
    [InlineData("https://broker.example.com/socket/", "wss://broker.example.com/runner")]
    [InlineData("wss://example.com/sentryvibe/socket", "wss://example.com/sentryvibe/runner")]
    [InlineData("http://localhost:5100", "ws://localhost:5100/runner")]
    [InlineData("wss://broker.example.com/runner", "wss://broker.example.com/runner")]
    [InlineData("wss://broker.example.com/custom", "wss://broker.example.com/custom")]
    public void The_original_runners_socket_path_and_a_bare_host_link_to_the_runner_path(string configured, string linked) =>
        Assert.Equal(new Uri(linked), LinkAddress.Normalize(configured));
}
