namespace SentryVibe.Runner.Agents;

/// <summary>
/// Agent configuration of this runner (section "Agents"). API keys and endpoints come from here (or the standard
/// environment names ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, OPENAI_API_KEY, OPENAI_BASE_URL), never from a command.
/// </summary>
public sealed class AgentOptions
{
    public const string Section = "Agents";

    /// <summary>Agent used when a command names none (or "default"). Null: claude-code when installed, else none.</summary>
    public string? Default { get; set; }

    public string? AnthropicApiKey { get; set; }

    public string? AnthropicBaseUrl { get; set; }

    public string? OpenAiApiKey { get; set; }

    public string? OpenAiBaseUrl { get; set; }

    /// <summary>Sets CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 for the CLI (no telemetry, no update checks).</summary>
    public bool DisableNonessentialTraffic { get; set; } = true;

    /// <summary>A turn running longer than this is stopped.</summary>
    public TimeSpan TurnTimeout { get; set; } = TimeSpan.FromMinutes(30);

    public ClaudeCodeOptions ClaudeCode { get; set; } = new();

    public CodexOptions Codex { get; set; } = new();

    public AnthropicApiOptions Anthropic { get; set; } = new();

    /// <summary>Extra environment variables for agent processes.</summary>
    public Dictionary<string, string> Environment { get; set; } = [];

    public AgentSandboxOptions Sandbox { get; set; } = new();
}

/// <summary>
/// How agents' shells are confined (section "Agents:Sandbox"): Claude Code's own sandbox for claude-code, bubblewrap
/// for the anthropic agent's shell, Codex's <see cref="CodexOptions.Sandbox"/> for codex. See docs/security.md.
/// </summary>
public sealed class AgentSandboxOptions
{
    /// <summary>False runs agents' shells unconfined (the build log and the runner's status say so).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Hosts the claude-code shell may reach (npm's registry, for installs); other hosts are refused.</summary>
    public List<string> AllowedDomains { get; set; } = ["registry.npmjs.org"];

    /// <summary>Folders outside the project the claude-code shell may write besides its own temp folder (npm's cache).</summary>
    public List<string> AllowWrite { get; set; } = ["~/.npm"];
}

public sealed class ClaudeCodeOptions
{
    public string Executable { get; set; } = "claude";

    /// <summary>
    /// acceptEdits lets the agent write files; Bash is allowed through <see cref="AllowedTools"/>.
    /// bypassPermissions is refused by the CLI when running as root.
    /// </summary>
    public string PermissionMode { get; set; } = "acceptEdits";

    public List<string> AllowedTools { get; set; } = ["Bash", "Read", "Write", "Edit", "Glob", "Grep"];

    public string? Model { get; set; }

    public List<string> ExtraArguments { get; set; } = [];
}

public sealed class CodexOptions
{
    public string Executable { get; set; } = "codex";

    public string? Model { get; set; }

    /// <summary>Codex sandbox: read-only, workspace-write or danger-full-access.</summary>
    public string Sandbox { get; set; } = "workspace-write";

    public List<string> ExtraArguments { get; set; } = [];
}

public sealed class AnthropicApiOptions
{
    public string Model { get; set; } = "claude-sonnet-4-5";

    public int MaxTokens { get; set; } = 8192;

    /// <summary>Model round trips per turn before the turn stops.</summary>
    public int MaxIterations { get; set; } = 40;

    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>For the cost shown to the user; the API reports tokens only.</summary>
    public decimal InputPricePerMillionTokens { get; set; } = 3m;

    public decimal OutputPricePerMillionTokens { get; set; } = 15m;
}
