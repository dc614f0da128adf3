using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>What survives a restart of `dotnet run --project AppHost`, and what must not outlive it.</summary>
[Collection("apphost lifecycle")]
public sealed class AppHostLifecycleTests : IDisposable
{
    private readonly string _home = RunningApp.NewHome();

    [Fact]
    public async Task Stopping_withdraws_the_contract_and_the_next_start_reuses_token_and_data_despite_a_stale_pid_file()
    {
        string firstToken;
        await using (var first = await RunningApp.StartAsync(_home))
        {
            firstToken = first.Contract.ApiToken;
            Assert.True(File.Exists(first.ContractFile));
        }
        Assert.False(File.Exists(RunningApp.ContractPath(_home)), "apphost.json must not outlive the AppHost that wrote it");
        if (ProcessProbe.Supported)
        {
            // Postgres runs in its data directory under the home: nothing may be left there once the AppHost is stopped
            // (the orchestrator stops its processes after the AppHost returns, hence a wait rather than a look).
            await Eventually.WaitAsync(() => Task.FromResult(ProcessProbe.RunningIn(_home).Count == 0), TimeSpan.FromSeconds(30),
                "no process left running in the AppHost's home");
        }

        // What a killed server leaves behind: a postmaster.pid naming a process that no longer exists.
        var pidFile = Path.Combine(_home, "postgres", "postmaster.pid");
        await File.WriteAllTextAsync(pidFile, $"{int.MaxValue - 1}\n{Path.Combine(_home, "postgres")}\n");

        await using var second = await RunningApp.StartAsync(_home);
        Assert.Equal(firstToken, second.Contract.ApiToken);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_home, "api-token")));
        }
    }

    public void Dispose() => RunningApp.DeleteHome(_home);
}
