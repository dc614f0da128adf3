// The one place that decides what environment a process the runner starts gets (agents, their shells, build checks,
// installs, dev servers, tunnels): an allow-list of the machine's basics, plus what that child needs, nothing else.
// The runner's own secrets (RUNNER_SHARED_SECRET, another agent's API key, SENTRY_DSN…) never reach a child;
// docs/security.md says who is trusted with what.
using System.Collections;
using Microsoft.Extensions.Options;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.Core;

/// <summary>Section "Runner:Environment": names a user wants passed to every child besides the built-in allow-list.</summary>
public sealed class ChildEnvironmentOptions
{
    public const string Section = "Runner:Environment";

    /// <summary>Extra variable names (exact, or a prefix ending in <c>*</c>, e.g. <c>MY_TOOL_*</c>) passed to every child.</summary>
    public List<string> Allow { get; set; } = [];
}

public sealed class ChildEnvironment(IOptions<ChildEnvironmentOptions> options)
{
    /// <summary>Names every child gets when the runner has them: paths, user, locale, terminal, proxies.</summary>
    private static readonly string[] BaseNames =
    [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TMP", "TEMP", "TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
        // Windows needs these to start anything at all.
        "SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
        "ProgramData", "ProgramFiles", "ProgramFiles(x86)", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
        // The mark that lets the next run find what a killed runner left behind (Processes/ProcessLineage.cs).
        ProcessLineage.Variable,
    ];

    /// <summary>Prefixes every child gets: locale, XDG folders, Node and npm settings (npm reads both cases).</summary>
    private static readonly string[] BasePrefixes = ["LC_", "XDG_", "NODE_", "NPM_CONFIG_", "npm_config_"];

    /// <summary>What the Claude Code CLI needs besides the base: its key, endpoint and settings.</summary>
    public static readonly IReadOnlyList<string> ClaudeCode = ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_*", "CLAUDE_CONFIG_DIR"];

    /// <summary>What the Codex CLI needs besides the base.</summary>
    public static readonly IReadOnlyList<string> Codex = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_*"];

    /// <summary>The allow-list alone (no user extras): for code outside dependency injection and for tests.</summary>
    public static ChildEnvironment Default { get; } = new(Options.Create(new ChildEnvironmentOptions()));

    /// <summary>
    /// The changes to lay over the runner's own environment for a child: every inherited variable that is neither
    /// on the allow-list nor in <paramref name="alsoInherit"/> is removed (null, which CliWrap and
    /// <see cref="System.Diagnostics.ProcessStartInfo.Environment"/> treat as "unset"), then <paramref name="set"/> is applied.
    /// </summary>
    public Dictionary<string, string?> For(IEnumerable<string>? alsoInherit = null, IEnumerable<KeyValuePair<string, string?>>? set = null)
    {
        var patterns = options.Value.Allow.Concat(alsoInherit ?? []).ToList();
        var result = new Dictionary<string, string?>(Comparer);
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            var name = (string)entry.Key;
            if (!IsAllowed(name, patterns))
            {
                result[name] = null;
            }
        }
        foreach (var (name, value) in set ?? [])
        {
            result[name] = value;
        }
        return result;
    }

    /// <summary>Applies <see cref="For"/> to a start info the caller builds itself.</summary>
    public void Apply(System.Diagnostics.ProcessStartInfo startInfo, IEnumerable<string>? alsoInherit = null, IEnumerable<KeyValuePair<string, string?>>? set = null)
    {
        foreach (var (name, value) in For(alsoInherit, set))
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }
    }

    private static StringComparer Comparer => OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    private static StringComparison Comparison => OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private static bool IsAllowed(string name, IReadOnlyList<string> patterns) =>
        BaseNames.Contains(name, Comparer)
        || BasePrefixes.Any(p => name.StartsWith(p, Comparison))
        || patterns.Any(p => p.EndsWith('*') ? name.StartsWith(p[..^1], Comparison) : string.Equals(name, p, Comparison));
}
