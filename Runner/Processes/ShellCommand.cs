// The one way the runner runs a command line through a shell (the build check, the anthropic agent's run_command):
// no stdin, the environment it is given, a timeout, and only as much output as the caller can use.
using System.Text;
using CliWrap;

namespace SentryVibe.Runner.Processes;

/// <summary>How a shell command ended; <see cref="Output"/> is stdout and stderr interleaved, capped.</summary>
public sealed record ShellOutcome(int? ExitCode, bool TimedOut, string Output);

/// <summary>What of a command's output is kept: the last lines (where a build's errors are) or the first characters.</summary>
public abstract class CappedOutput
{
    public abstract void Add(string line);

    /// <summary>What was kept, as one string.</summary>
    public abstract string Text { get; }

    /// <summary>The last <paramref name="lines"/> lines, joined by "\n".</summary>
    public static CappedOutput LastLines(int lines) => new Tail(lines);

    /// <summary>Whole lines (each ending in a newline) until <paramref name="characters"/> are reached.</summary>
    public static CappedOutput FirstCharacters(int characters) => new Head(characters);

    private sealed class Tail(int max) : CappedOutput
    {
        private readonly Queue<string> _lines = new();

        public override void Add(string line)
        {
            lock (_lines)
            {
                _lines.Enqueue(line);
                if (_lines.Count > max)
                {
                    _lines.Dequeue();
                }
            }
        }

        public override string Text
        {
            get
            {
                lock (_lines)
                {
                    return string.Join("\n", _lines);
                }
            }
        }
    }

    private sealed class Head(int max) : CappedOutput
    {
        private readonly StringBuilder _text = new();

        public override void Add(string line)
        {
            lock (_text)
            {
                if (_text.Length < max)
                {
                    _text.AppendLine(line);
                }
            }
        }

        public override string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }
    }
}

public static class ShellCommand
{
    /// <summary>The program and arguments that run <paramref name="commandLine"/> in this platform's shell.</summary>
    public static IReadOnlyList<string> Argv(string commandLine) =>
        OperatingSystem.IsWindows() ? ["cmd", "/c", commandLine] : ["/bin/sh", "-c", commandLine];

    /// <summary>
    /// Runs <paramref name="commandLine"/> in <paramref name="workingDirectory"/> with exactly
    /// <paramref name="environment"/> (see <see cref="Core.ChildEnvironment"/>). <paramref name="confine"/> may wrap the
    /// shell's argv in a sandbox (bubblewrap). Cancellation and the timeout stop the whole tree (<see cref="CliProcess"/>).
    /// </summary>
    public static async Task<ShellOutcome> RunAsync(
        string commandLine,
        string workingDirectory,
        IReadOnlyDictionary<string, string?> environment,
        TimeSpan timeout,
        CappedOutput output,
        CancellationToken cancellationToken,
        Func<IReadOnlyList<string>, Command>? confine = null)
    {
        var argv = Argv(commandLine);
        var command = confine?.Invoke(argv) ?? Cli.Wrap(argv[0]).WithArguments(argv.Skip(1));
        ValueTask Keep(string line)
        {
            output.Add(line);
            return ValueTask.CompletedTask;
        }
        var outcome = await CliProcess.RunAsync(
            command.WithWorkingDirectory(workingDirectory).WithStandardInputPipe(PipeSource.Null).WithEnvironmentVariables(environment),
            Keep,
            Keep,
            timeout,
            cancellationToken);
        return new ShellOutcome(outcome.ExitCode, outcome.TimedOut, output.Text);
    }
}
