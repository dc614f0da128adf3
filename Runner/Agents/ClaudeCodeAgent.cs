using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The Claude Code CLI in print mode with stream-json output, one process per turn, in the project folder.
/// Follow-ups pass <c>--resume &lt;session&gt;</c>. The prompt goes through stdin so it is never parsed as options.
/// Its shell runs in Claude Code's own sandbox (writes only in the project folder, npm's registry only) when the
/// probe says it can engage; the CLI gets the allow-listed environment plus its key (docs/security.md).
/// </summary>
public sealed class ClaudeCodeAgent(
    IOptions<AgentOptions> options,
    ILogger<ClaudeCodeAgent> logger,
    AgentSandbox? sandbox = null,
    ChildEnvironment? environment = null) : IAgent
{
    private readonly AgentSandbox _sandbox = sandbox ?? new AgentSandbox();
    private readonly ChildEnvironment _environment = environment ?? ChildEnvironment.Default;

    private readonly ConcurrentDictionary<string, ClaudeTodoSnapshot> _todosBySession = new();

    public string Name => Protocol.Agents.ClaudeCode;

    public string? Unavailable() =>
        ExecutableLocator.Find(options.Value.ClaudeCode.Executable) is null
            ? $"The Claude Code CLI ('{options.Value.ClaudeCode.Executable}') is not on PATH. Install it with: npm install -g @anthropic-ai/claude-code"
            : null;

    public string? NotSandboxed() =>
        !options.Value.Sandbox.Enabled ? "turned off (Agents:Sandbox:Enabled is false)" : _sandbox.Status.ClaudeCode;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var executable = ExecutableLocator.Find(o.ClaudeCode.Executable);
        if (executable is null)
        {
            return AgentTurnResult.Failed(Unavailable()!, sessionId);
        }

        var parser = new ClaudeStreamParser(context.ProjectPath, sessionId is null ? null : _todosBySession.GetValueOrDefault(sessionId));
        var command = Cli.Wrap(executable)
            .WithArguments(BuildArguments(o, context.Instructions, sessionId, NotSandboxed() is null))
            .WithWorkingDirectory(context.ProjectPath)
            .WithEnvironmentVariables(_environment.For(ChildEnvironment.ClaudeCode, Environment(o)))
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

    /// <summary>
    /// Claude Code's sandbox settings: no fallback to an unsandboxed run (the CLI fails instead of quietly running
    /// unconfined if it disagrees with our probe), and the API key hidden from the shell's commands.
    /// </summary>
    public static string SandboxSettings(AgentSandboxOptions o) => new JsonObject
    {
        ["sandbox"] = new JsonObject
        {
            ["enabled"] = true,
            ["failIfUnavailable"] = true,
            ["allowUnsandboxedCommands"] = false,
            ["network"] = new JsonObject { ["allowedDomains"] = new JsonArray(o.AllowedDomains.Select(d => (JsonNode)d).ToArray()) },
            ["filesystem"] = new JsonObject { ["allowWrite"] = new JsonArray(o.AllowWrite.Select(d => (JsonNode)d).ToArray()) },
            ["credentials"] = new JsonObject
            {
                ["envVars"] = new JsonArray(new[] { "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN" }
                    .Select(n => (JsonNode)new JsonObject { ["name"] = n, ["mode"] = "deny" }).ToArray()),
            },
        },
    }.ToJsonString();

    private static Action<CliWrap.Builders.ArgumentsBuilder> BuildArguments(AgentOptions agents, string instructions, string? sessionId, bool sandboxed) => args =>
    {
        var o = agents.ClaudeCode;
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
        if (sandboxed)
        {
            args.Add("--settings").Add(SandboxSettings(agents.Sandbox));
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
