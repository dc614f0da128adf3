extern alias AppHostAssembly;
using Microsoft.Extensions.Configuration;
using Xunit;
using SentryVibeHome = AppHostAssembly::SentryVibe.AppHost.Contract.SentryVibeHome;
using PrivateFiles = AppHostAssembly::SentryVibe.AppHost.Contract.PrivateFiles;

namespace SentryVibe.AppHost.Tests;

/// <summary>The AppHost's secrets and contract file under SENTRYVIBE_HOME are its owner's alone (docs/operations.md).</summary>
public sealed class HomeFilesTests : IDisposable
{
    private const UnixFileMode GroupOrOtherReadWrite =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    private readonly string _root = Directory.CreateTempSubdirectory("sentryvibe-home-").FullName;

    [Fact]
    public void A_home_and_secrets_left_readable_by_others_are_made_owner_only_on_load()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var home = Path.Combine(_root, "home");
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, (UnixFileMode)0b111_111_111);
        var token = Path.Combine(home, "api-token");
        File.WriteAllText(token, new string('a', 43) + "\n");
        File.SetUnixFileMode(token, (UnixFileMode)0b110_100_100);

        var loaded = SentryVibeHome.Load(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SENTRYVIBE_HOME"] = home,
            ["SentryVibe:WebPort"] = "0",
            ["SentryVibe:BrokerPort"] = "0",
        }).Build());
        PrivateFiles.Write(loaded.ContractFile, "{}\n");

        Assert.Equal(new string('a', 43), loaded.ApiToken);
        Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(home) & GroupOrOtherReadWrite);
        foreach (var file in new[] { token, Path.Combine(home, "runner-secret"), loaded.ContractFile })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public void A_new_home_is_created_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var home = Path.Combine(_root, "fresh");
        SentryVibeHome.Load(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SENTRYVIBE_HOME"] = home,
            ["SentryVibe:WebPort"] = "0",
            ["SentryVibe:BrokerPort"] = "0",
        }).Build());

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(home));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
