using CliWrap;
using CliWrap.Builders;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// What the two CLI agents (claude-code, codex) share: find the CLI on PATH, run it once per turn in the project
/// folder with the allow-listed environment plus its own variables (docs/security.md), the prompt on stdin (never
/// parsed as options), its JSON lines through the agent's <see cref="JsonLinesParser"/> to the event sink as they
/// come, a turn timeout, and cancellation that stops the whole process tree. Each agent adds its arguments, its
/// sandbox and how its run ends.
/// </summary>
public abstract class CliAgent<TParser>(IOptions<AgentOptions> options, ILogger logger, ChildEnvironment? environment) : IAgent
    where TParser : JsonLinesParser
{
    private readonly ChildEnvironment _environment = environment ?? ChildEnvironment.Default;

    protected AgentOptions Options => options.Value;

    public abstract string Name { get; }

    /// <summary>The CLI's name for messages ("Claude Code").</summary>
    protected abstract string Title { get; }

    /// <summary>The configured executable (a name on PATH or a path).</summary>
    protected abstract string Executable { get; }

    /// <summary>The npm package that installs the CLI.</summary>
    protected abstract string Package { get; }

    /// <summary>The variables this CLI may inherit besides the base allow-list (<see cref="ChildEnvironment"/>).</summary>
    protected abstract IReadOnlyList<string> InheritedVariables { get; }

    public string? Unavailable() =>
        ExecutableLocator.Find(Executable) is null
            ? $"The {Title} CLI ('{Executable}') is not on PATH. Install it with: npm install -g {Package}"
            : null;

    public virtual string? NotSandboxed() => null;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        var executable = ExecutableLocator.Find(Executable);
        if (executable is null)
        {
            return AgentTurnResult.Failed(Unavailable()!, sessionId);
        }

        var parser = CreateParser(context, sessionId);
        var command = Cli.Wrap(executable)
            .WithArguments(args => AddArguments(args, context, sessionId))
            .WithWorkingDirectory(context.ProjectPath)
            .WithEnvironmentVariables(_environment.For(InheritedVariables, Variables()))
            .WithStandardInputPipe(PipeSource.FromString(Stdin(context, prompt, sessionId)));

        logger.LogInformation("Starting {Agent} for {ProjectId} (resume: {SessionId})", Title, context.ProjectId, sessionId ?? "-");
        var outcome = await CliProcess.RunAsync(
            command,
            async line =>
            {
                foreach (var e in parser.Parse(line))
                {
                    await context.Events.PublishAsync(context.ProjectId, e, CancellationToken.None);
                }
            },
            null,
            Options.TurnTimeout,
            cancellationToken);

        var session = SessionOf(parser) ?? sessionId;
        Ended(parser, session);
        cancellationToken.ThrowIfCancellationRequested();
        if (outcome.TimedOut)
        {
            return AgentTurnResult.Failed($"{Title} did not finish within {Options.TurnTimeout}.", session);
        }
        return Result(parser, outcome, session);
    }

    /// <summary>A parser for one turn; <paramref name="sessionId"/> is the session the turn resumes, if any.</summary>
    protected abstract TParser CreateParser(AgentTurnContext context, string? sessionId);

    protected abstract void AddArguments(ArgumentsBuilder args, AgentTurnContext context, string? sessionId);

    /// <summary>What goes to the CLI's stdin: the prompt.</summary>
    protected virtual string Stdin(AgentTurnContext context, string prompt, string? sessionId) => prompt;

    /// <summary>Variables set for the CLI (its key and endpoint, <see cref="AgentOptions.Environment"/>).</summary>
    protected virtual Dictionary<string, string?> Variables() =>
        Options.Environment.ToDictionary(kv => kv.Key, kv => (string?)kv.Value);

    /// <summary>The session the CLI reported, if any.</summary>
    protected abstract string? SessionOf(TParser parser);

    /// <summary>After the process ended, also when the turn was cancelled: keep what the next turn of the session needs.</summary>
    protected virtual void Ended(TParser parser, string? session)
    {
    }

    /// <summary>The turn's result once the process ended in time.</summary>
    protected abstract AgentTurnResult Result(TParser parser, ProcessOutcome outcome, string? session);

    /// <summary>The last lines of the CLI's stderr, for an error message.</summary>
    protected static string StderrTail(ProcessOutcome outcome) => string.Join("\n", outcome.StderrTail.TakeLast(8));
}
