using System.Collections.Concurrent;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The Claude Code CLI in print mode with stream-json output, one process per turn, in the project folder.
/// Follow-ups pass <c>--resume &lt;session&gt;</c>. The prompt goes through stdin so it is never parsed as options.
/// </summary>
public sealed class ClaudeCodeAgent(IOptions<AgentOptions> options, ILogger<ClaudeCodeAgent> logger) : IAgent
{
    private readonly ConcurrentDictionary<string, ClaudeTodoSnapshot> _todosBySession = new();

    public string Name => Protocol.Agents.ClaudeCode;

    public string? Unavailable() =>
        CliProcess.FindExecutable(options.Value.ClaudeCode.Executable) is null
            ? $"The Claude Code CLI ('{options.Value.ClaudeCode.Executable}') is not on PATH. Install it with: npm install -g @anthropic-ai/claude-code"
            : null;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var executable = CliProcess.FindExecutable(o.ClaudeCode.Executable);
        if (executable is null)
        {
            return AgentTurnResult.Failed(Unavailable()!, sessionId);
        }

        var parser = new ClaudeStreamParser(context.ProjectPath, sessionId is null ? null : _todosBySession.GetValueOrDefault(sessionId));
        var command = Cli.Wrap(executable)
            .WithArguments(BuildArguments(o.ClaudeCode, context.Instructions, sessionId))
            .WithWorkingDirectory(context.ProjectPath)
            .WithEnvironmentVariables(Environment(o))
            .WithStandardInputPipe(PipeSource.FromString(prompt));

        logger.LogInformation("Starting Claude Code for {ProjectId} (resume: {SessionId})", context.ProjectId, sessionId ?? "-");
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
            o.TurnTimeout,
            cancellationToken);

        var session = parser.SessionId ?? sessionId;
        if (session is not null)
        {
            _todosBySession[session] = parser.Snapshot;
        }
        cancellationToken.ThrowIfCancellationRequested();

        var result = parser.Result;
        if (outcome.TimedOut)
        {
            return AgentTurnResult.Failed($"Claude Code did not finish within {o.TurnTimeout}.", session);
        }
        if (result is null)
        {
            var tail = string.Join("\n", outcome.StderrTail.TakeLast(8));
            return AgentTurnResult.Failed($"Claude Code exited with code {outcome.ExitCode} without a result. {tail}".Trim(), session);
        }
        return new AgentTurnResult(
            Success: !result.IsError,
            SessionId: session,
            CostUsd: result.CostUsd,
            InputTokens: result.InputTokens,
            OutputTokens: result.OutputTokens,
            Turns: result.NumTurns,
            Error: result.IsError ? $"Claude Code ended with {result.Subtype}: {result.Text}" : null,
            Todos: parser.Todos);
    }

    private static Action<CliWrap.Builders.ArgumentsBuilder> BuildArguments(ClaudeCodeOptions o, string instructions, string? sessionId) => args =>
    {
        args.Add("-p")
            .Add("--output-format").Add("stream-json")
            .Add("--verbose")
            .Add("--permission-mode").Add(o.PermissionMode);
        if (o.AllowedTools.Count > 0)
        {
            args.Add("--allowedTools").Add(string.Join(",", o.AllowedTools));
        }
        if (!string.IsNullOrWhiteSpace(o.Model))
        {
            args.Add("--model").Add(o.Model);
        }
        if (!string.IsNullOrWhiteSpace(instructions))
        {
            args.Add("--append-system-prompt").Add(instructions);
        }
        if (sessionId is not null)
        {
            args.Add("--resume").Add(sessionId);
        }
        args.Add(o.ExtraArguments);
    };

    private static Dictionary<string, string?> Environment(AgentOptions o)
    {
        var env = new Dictionary<string, string?>(o.Environment.Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value)));
        if (!string.IsNullOrWhiteSpace(o.AnthropicApiKey))
        {
            env["ANTHROPIC_API_KEY"] = o.AnthropicApiKey;
        }
        if (!string.IsNullOrWhiteSpace(o.AnthropicBaseUrl))
        {
            env["ANTHROPIC_BASE_URL"] = o.AnthropicBaseUrl;
        }
        if (o.DisableNonessentialTraffic)
        {
            env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1";
        }
        return env;
    }
}
