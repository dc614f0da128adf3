using System.Collections.Concurrent;
using System.Text.Json;
using CliWrap.Builders;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The Codex CLI: <c>codex exec --json</c> in the project folder; follow-ups use <c>codex exec resume &lt;thread&gt;</c>.
/// Codex reports tokens, not cost, so cost stays 0. Its shell is confined by Codex's own sandbox
/// (<see cref="CodexOptions.Sandbox"/>, workspace-write, with /tmp and $TMPDIR left read-only so that the project is
/// the only place it writes; no network); the CLI gets the allow-listed environment plus its key (docs/security.md).
/// </summary>
public sealed class CodexAgent(IOptions<AgentOptions> options, ILogger<CodexAgent> logger, ChildEnvironment? environment = null)
    : CliAgent<CodexEventParser>(options, logger, environment)
{
    /// <summary>The model provider the runner defines when <see cref="AgentOptions.OpenAiBaseUrl"/> is set.</summary>
    public const string ProviderId = "sentryvibe";

    /// <summary>Thread totals at the end of each thread's last turn: Codex reports running totals, a turn needs its own.</summary>
    private readonly ConcurrentDictionary<string, CodexUsage> _usageByThread = new();

    public override string Name => Protocol.Agents.Codex;

    protected override string Title => "Codex";

    protected override string Executable => Options.Codex.Executable;

    protected override string Package => "@openai/codex";

    protected override IReadOnlyList<string> InheritedVariables => ChildEnvironment.Codex;

    public override string? NotSandboxed() =>
        Options.Codex.Sandbox == "danger-full-access" ? "Agents:Codex:Sandbox is danger-full-access" : null;

    protected override CodexEventParser CreateParser(AgentTurnContext context, string? sessionId) =>
        new(context.ProjectPath, sessionId is null ? null : _usageByThread.GetValueOrDefault(sessionId));

    protected override void AddArguments(ArgumentsBuilder args, AgentTurnContext context, string? sessionId)
    {
        var o = Options;
        args.Add("exec").Add("--json").Add("--skip-git-repo-check").Add("--sandbox").Add(o.Codex.Sandbox);
        foreach (var setting in Settings(o))
        {
            args.Add("-c").Add(setting);
        }
        if (!string.IsNullOrWhiteSpace(o.Codex.Model))
        {
            args.Add("--model").Add(o.Codex.Model);
        }
        args.Add(o.Codex.ExtraArguments);
        if (sessionId is not null)
        {
            args.Add("resume").Add(sessionId);
        }
        // "-" reads the prompt from stdin, so a prompt starting with a dash is never an option.
        args.Add("-");
    }

    /// <summary>
    /// <c>-c</c> overrides for this run (values are TOML). The update_plan tool is on, so plans reach the UI as todos
    /// (Codex 0.169 offers it only when asked). The shell's commands do not get the key. In workspace-write, /tmp
    /// and $TMPDIR stay read-only: the project is the one writable place, as for the other agents. With
    /// <see cref="AgentOptions.OpenAiBaseUrl"/>, a provider of that URL speaking the Responses API over HTTP (Codex
    /// ignores OPENAI_BASE_URL), its key from OPENAI_API_KEY.
    /// </summary>
    public static IReadOnlyList<string> Settings(AgentOptions o)
    {
        var settings = new List<string>
        {
            "tools.update_plan={ enabled = true }",
            // Codex passes CODEX_API_KEY on to its shell's commands otherwise; the key is for the CLI alone.
            $"shell_environment_policy.exclude=[{string.Join(", ", KeyVariables.Select(Toml))}]",
        };
        if (o.Codex.Sandbox == "workspace-write")
        {
            settings.Add("sandbox_workspace_write.exclude_slash_tmp=true");
            settings.Add("sandbox_workspace_write.exclude_tmpdir_env_var=true");
        }
        if (!string.IsNullOrWhiteSpace(o.OpenAiBaseUrl))
        {
            settings.Add($"model_provider={Toml(ProviderId)}");
            settings.Add($"model_providers.{ProviderId}.name={Toml("OpenAI-compatible (Agents:OpenAiBaseUrl)")}");
            settings.Add($"model_providers.{ProviderId}.base_url={Toml(o.OpenAiBaseUrl.TrimEnd('/'))}");
            settings.Add($"model_providers.{ProviderId}.env_key={Toml("OPENAI_API_KEY")}");
            settings.Add($"model_providers.{ProviderId}.wire_api={Toml("responses")}");
            settings.Add($"model_providers.{ProviderId}.supports_websockets=false");
        }
        return settings;
    }

    /// <summary>The variables that carry the API key.</summary>
    private static readonly string[] KeyVariables = ["OPENAI_API_KEY", "CODEX_API_KEY"];

    /// <summary>A TOML basic string (JSON's escapes are valid TOML ones).</summary>
    private static string Toml(string value) => JsonSerializer.Serialize(value);

    protected override string Stdin(AgentTurnContext context, string prompt, string? sessionId) =>
        string.IsNullOrWhiteSpace(context.Instructions) || sessionId is not null ? prompt : $"{context.Instructions}\n\n{prompt}";

    protected override Dictionary<string, string?> Variables()
    {
        var env = base.Variables();
        if (!string.IsNullOrWhiteSpace(Options.OpenAiApiKey))
        {
            env["OPENAI_API_KEY"] = Options.OpenAiApiKey;
            env["CODEX_API_KEY"] = Options.OpenAiApiKey;
        }
        return env;
    }

    protected override string? SessionOf(CodexEventParser parser) => parser.ThreadId;

    protected override void Ended(CodexEventParser parser, string? session)
    {
        if (session is not null && parser.Completed)
        {
            _usageByThread[session] = parser.Totals;
        }
    }

    protected override AgentTurnResult Result(CodexEventParser parser, ProcessOutcome outcome, string? session)
    {
        var ok = parser.Completed && parser.Error is null && outcome.ExitCode == 0;
        var error = ok
            ? null
            : parser.Error ?? $"Codex exited with code {outcome.ExitCode}. {parser.LastNotice} {StderrTail(outcome)}".Trim();
        return new AgentTurnResult(ok, session, 0m, parser.InputTokens, parser.OutputTokens, parser.Turns, error, parser.Todos);
    }
}
