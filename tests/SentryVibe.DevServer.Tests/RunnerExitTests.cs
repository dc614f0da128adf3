using System.Text.RegularExpressions;
using CliWrap;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;

namespace SentryVibe.DevServer.Tests;

/// <summary>
/// A real process stands in for the runner (tests/SentryVibe.DevServer.ExitProbe); it is signalled the way a user or
/// a service manager ends the runner, and the process table must show nothing it started afterwards.
/// </summary>
public sealed partial class RunnerExitTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TempFolder _folder = new();
    private readonly List<int> _pids = [];

    public void Dispose()
    {
        Processes.KillTrees(_pids);
        _folder.Dispose();
    }

    [Theory]
    [InlineData("bare", ProcessTable.SigTerm)]
    [InlineData("bare", ProcessTable.SigInt)]
    [InlineData("host", ProcessTable.SigTerm)]
    [InlineData("host", ProcessTable.SigInt)]
    public async Task Nothing_the_runner_started_survives_its_exit(string mode, int signal)
    {
        if (!ProcessTable.HasProcFs)
        {
            return;
        }
        var script = _folder.Write("family.js", NodeScripts.Idle);
        var lines = new List<string>();
        var probeDll = Path.Combine(AppContext.BaseDirectory, "SentryVibe.DevServer.ExitProbe.dll");
        using var forceful = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var probe = Cli.Wrap("dotnet").WithArguments([probeDll, mode, script])
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(l => { lock (lines) { lines.Add(l); } }))
            .ExecuteAsync(forceful.Token);
        _pids.Add(probe.ProcessId);

        int? Ready() { lock (lines) { return lines.Select(l => Ready_().Match(l)).FirstOrDefault(m => m.Success) is { } m ? int.Parse(m.Groups[1].Value) : null; } }
        await Wait.UntilAsync(() => Ready() is not null, Timeout, "the probe started its child");
        var leader = Ready()!.Value;
        _pids.Add(leader);
        await Wait.UntilAsync(() => Processes.TreeOf(leader).Count >= 3, Timeout, "child and grandchild are running");
        var tree = Processes.TreeOf(leader);

        ProcessTable.Signal(probe.ProcessId, signal);
        await probe.Task.WaitAsync(Timeout);

        Assert.Empty(Processes.StillAlive(tree));
    }

    [GeneratedRegex(@"^ready (\d+)$")]
    private static partial Regex Ready_();
}
