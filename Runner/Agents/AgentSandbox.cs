// Whether the agents' shells can be confined to their project folder on this machine, found out by trying it
// (docs/security.md): Claude Code's own sandbox needs bubblewrap and socat on Linux and, without socat, runs its
// shell unsandboxed without a word, so the runner checks both and runs bubblewrap once on a throwaway folder.
using System.Diagnostics;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Agents;

/// <summary>What the probe found. A problem is a sentence for the user; null means that confinement works.</summary>
/// <param name="Bubblewrap">Why bubblewrap cannot confine a command here (the anthropic agent's shell uses it directly).</param>
/// <param name="ClaudeCode">Why Claude Code's sandbox cannot engage here (bubblewrap and socat on Linux, Seatbelt on macOS).</param>
public sealed record SandboxStatus(string? Bubblewrap, string? ClaudeCode)
{
    /// <summary>The runner-wide line for the status and the logs: the claude-code sandbox is what most builds use.</summary>
    public string Summary => ClaudeCode is null && Bubblewrap is null
        ? "agent sandbox: on (bubblewrap)"
        : ClaudeCode is null
            ? $"agent sandbox: on for claude-code; anthropic agent's shell not sandboxed: {Bubblewrap}"
            : $"agent not sandboxed: {ClaudeCode}";

    public static string NotSandboxed(string why) => $"agent not sandboxed: {why}";
}

/// <summary>Runs the probe once (it starts a process) and keeps the answer.</summary>
/// <param name="pathVariable">Where to look for bwrap and socat; default the runner's PATH, which its children get too.</param>
public sealed class AgentSandbox(string? pathVariable = null)
{
    private readonly Lazy<SandboxStatus> _status = new(() => Probe(pathVariable));

    public SandboxStatus Status => _status.Value;

    /// <summary>The runner-wide line (status file, Hello, start-up log); null when nothing probed.</summary>
    public static string? Describe(AgentSandbox? sandbox, AgentOptions? options) =>
        options is { Sandbox.Enabled: false } ? SandboxStatus.NotSandboxed("turned off (Agents:Sandbox:Enabled is false)") : sandbox?.Status.Summary;

    /// <summary>
    /// Finds bwrap and socat on <paramref name="pathVariable"/> (default: the runner's PATH) and runs bwrap with the
    /// root read-only and one folder writable: the write inside must land and the write outside must fail.
    /// </summary>
    public static SandboxStatus Probe(string? pathVariable = null)
    {
        if (OperatingSystem.IsWindows())
        {
            const string why = "sandboxing is not supported on Windows (run the runner in WSL2)";
            return new SandboxStatus(why, why);
        }
        if (OperatingSystem.IsMacOS())
        {
            // Claude Code uses the built-in Seatbelt there; our own shell sandbox is bubblewrap, Linux only.
            return new SandboxStatus("the anthropic agent's shell sandbox uses bubblewrap (Linux only)",
                File.Exists("/usr/bin/sandbox-exec") ? null : "sandbox-exec is missing");
        }
        var bwrap = ExecutableLocator.Find("bwrap", pathVariable);
        var bubblewrap = bwrap is null ? "bubblewrap is not installed (sudo apt-get install bubblewrap socat)" : Trial(bwrap);
        var socat = ExecutableLocator.Find("socat", pathVariable) is null
            ? "socat is not installed (sudo apt-get install socat): Claude Code's sandbox needs it"
            : null;
        return new SandboxStatus(bubblewrap, bubblewrap ?? socat);
    }

    /// <summary>
    /// The argument list that runs <paramref name="command"/> under bwrap in <paramref name="workingDirectory"/>:
    /// the whole file system read-only but the <paramref name="writable"/> folders, its own /dev, /proc and pids.
    /// </summary>
    public static IReadOnlyList<string> BubblewrapArguments(IReadOnlyList<string> writable, string workingDirectory, IReadOnlyList<string> command) =>
    [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        .. writable.SelectMany(w => new[] { "--bind", w, w }),
        "--chdir", workingDirectory,
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--",
        .. command,
    ];

    private static string? Trial(string bwrap)
    {
        var folder = Path.Join(Path.GetTempPath(), "sentryvibe-sandbox-probe-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            OwnerOnly.Directory(Path.Join(folder, "inside"));
            var inside = Path.Join(folder, "inside", "written");
            var outside = Path.Join(folder, "outside");
            var start = new ProcessStartInfo(bwrap) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in BubblewrapArguments([Path.Join(folder, "inside")], Path.Join(folder, "inside"), ["/bin/sh", "-c", $": > '{inside}'; (: > '{outside}') 2>/dev/null; exit 0"]))
            {
                start.ArgumentList.Add(a);
            }
            ChildEnvironment.Default.Apply(start);
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(15)))
            {
                process.Kill(entireProcessTree: true);
                return "bubblewrap did not finish a trial command within 15 s";
            }
            if (process.ExitCode != 0)
            {
                var message = stderr.Result.Trim();
                return $"bubblewrap cannot run here (exit code {process.ExitCode}{(message.Length > 0 ? ": " + message : "")}); user namespaces may be disabled";
            }
            if (File.Exists(outside))
            {
                return "bubblewrap ran but did not stop a write outside the project folder";
            }
            return File.Exists(inside) ? null : "bubblewrap ran but a write inside the project folder did not land";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            return $"bubblewrap could not be started: {e.Message}";
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
