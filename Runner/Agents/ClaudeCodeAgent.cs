using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using CliWrap.Builders;
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
    ChildEnvironment? environment = null) : CliAgent<ClaudeStreamParser>(options, logger, environment)
{
    private readonly AgentSandbox _sandbox = sandbox ?? new AgentSandbox();

    private readonly ConcurrentDictionary<string, ClaudeTodoSnapshot> _todosBySession = new();

    public override string Name => Protocol.Agents.ClaudeCode;

    protected override string Title => "Claude Code";

    protected override string Executable => Options.ClaudeCode.Executable;

    protected override string Package => "@anthropic-ai/claude-code";

    protected override IReadOnlyList<string> InheritedVariables => ChildEnvironment.ClaudeCode;

    public override string? NotSandboxed() =>
        !Options.Sandbox.Enabled ? "turned off (Agents:Sandbox:Enabled is false)" : _sandbox.Status.ClaudeCode;

    protected override ClaudeStreamParser CreateParser(AgentTurnContext context, string? sessionId) =>
        new(context.ProjectPath, sessionId is null ? null : _todosBySession.GetValueOrDefault(sessionId));

    protected override string? SessionOf(ClaudeStreamParser parser) => parser.SessionId;

    protected override void Ended(ClaudeStreamParser parser, string? session)
    {
        if (session is not null)
        {
            _todosBySession[session] = parser.Snapshot;
        }
    }

    protected override AgentTurnResult Result(ClaudeStreamParser parser, ProcessOutcome outcome, string? session)
    {
        var result = parser.Result;
        if (result is null)
        {
            return AgentTurnResult.Failed($"Claude Code exited with code {outcome.ExitCode} without a result. {StderrTail(outcome)}".Trim(), session);
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

    protected override void AddArguments(ArgumentsBuilder args, AgentTurnContext context, string? sessionId)
    {
        var o = Options.ClaudeCode;
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
        if (!string.IsNullOrWhiteSpace(context.Instructions))
        {
            args.Add("--append-system-prompt").Add(context.Instructions);
        }
        if (sessionId is not null)
        {
            args.Add("--resume").Add(sessionId);
        }
        if (NotSandboxed() is null)
        {
            args.Add("--settings").Add(SandboxSettings(Options.Sandbox));
        }
        args.Add(o.ExtraArguments);
    }

    protected override Dictionary<string, string?> Variables()
    {
        var o = Options;
        var env = base.Variables();
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
