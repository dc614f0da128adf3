using CliWrap;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The Codex CLI: <c>codex exec --json</c> in the project folder; follow-ups use <c>codex exec resume &lt;thread&gt;</c>.
/// Codex reports tokens, not cost, so cost stays 0. Its shell is confined by Codex's own sandbox
/// (<see cref="CodexOptions.Sandbox"/>, workspace-write); the CLI gets the allow-listed environment plus its key.
/// </summary>
public sealed class CodexAgent(IOptions<AgentOptions> options, ChildEnvironment? environment = null) : IAgent
{
    private readonly ChildEnvironment _environment = environment ?? ChildEnvironment.Default;

    public string? NotSandboxed() =>
        options.Value.Codex.Sandbox == "danger-full-access" ? "Agents:Codex:Sandbox is danger-full-access" : null;

    public string Name => Protocol.Agents.Codex;

    public string? Unavailable() =>
        ExecutableLocator.Find(options.Value.Codex.Executable) is null
            ? $"The Codex CLI ('{options.Value.Codex.Executable}') is not on PATH. Install it with: npm install -g @openai/codex"
            : null;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var executable = ExecutableLocator.Find(o.Codex.Executable);
        if (executable is null)
        {
            return AgentTurnResult.Failed(Unavailable()!, sessionId);
        }
        var parser = new CodexEventParser(context.ProjectPath);
        var fullPrompt = string.IsNullOrWhiteSpace(context.Instructions) || sessionId is not null
            ? prompt
            : $"{context.Instructions}\n\n{prompt}";

        var command = Cli.Wrap(executable)
            .WithArguments(args =>
            {
                args.Add("exec").Add("--json").Add("--skip-git-repo-check").Add("--sandbox").Add(o.Codex.Sandbox);
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
            })
            .WithWorkingDirectory(context.ProjectPath)
            .WithEnvironmentVariables(_environment.For(ChildEnvironment.Codex, Environment(o)))
            .WithStandardInputPipe(PipeSource.FromString(fullPrompt));

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
        cancellationToken.ThrowIfCancellationRequested();

        var session = parser.ThreadId ?? sessionId;
        if (outcome.TimedOut)
        {
            return AgentTurnResult.Failed($"Codex did not finish within {o.TurnTimeout}.", session);
        }
        var ok = parser.Completed && parser.Error is null && outcome.ExitCode == 0;
        var error = ok ? null : parser.Error ?? $"Codex exited with code {outcome.ExitCode}. {string.Join("\n", outcome.StderrTail.TakeLast(8))}".Trim();
        return new AgentTurnResult(ok, session, 0m, parser.InputTokens, parser.OutputTokens, parser.Turns, error, parser.Todos);
    }

    private static Dictionary<string, string?> Environment(AgentOptions o)
    {
        var env = o.Environment.ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
        if (!string.IsNullOrWhiteSpace(o.OpenAiApiKey))
        {
            env["OPENAI_API_KEY"] = o.OpenAiApiKey;
            env["CODEX_API_KEY"] = o.OpenAiApiKey;
        }
        if (!string.IsNullOrWhiteSpace(o.OpenAiBaseUrl))
        {
            env["OPENAI_BASE_URL"] = o.OpenAiBaseUrl;
        }
        return env;
    }
}
