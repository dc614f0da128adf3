using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using CliWrap;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Agents;

/// <summary>
/// The Anthropic Messages API through the official SDK with a small tool loop: read_file, write_file, list_files
/// (confined to the project through <see cref="ProjectWorkspace"/>) and run_command (with a timeout, inside
/// bubblewrap: the project folder writable, the rest read-only, a private /tmp; with the allow-listed environment and
/// no API key). The conversation is the session: kept as JSON under <c>$SENTRYVIBE_HOME/sessions</c> so follow-ups continue it.
/// </summary>
public sealed class AnthropicApiAgent(
    IOptions<AgentOptions> options,
    IOptions<WorkspaceOptions> workspaceOptions,
    ProjectWorkspace workspace,
    AgentSandbox? sandbox = null,
    ChildEnvironment? environment = null) : IAgent
{
    private readonly AgentSandbox _sandbox = sandbox ?? new AgentSandbox();
    private readonly ChildEnvironment _environment = environment ?? ChildEnvironment.Default;

    private const int MaxToolOutput = 12_000;
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> SessionLocks = new();

    public string Name => Protocol.Agents.Anthropic;

    public string? Unavailable() =>
        string.IsNullOrWhiteSpace(options.Value.AnthropicApiKey)
            ? "The anthropic agent needs an API key: set ANTHROPIC_API_KEY (or Agents:AnthropicApiKey) in the runner's configuration."
            : null;

    public string? NotSandboxed() =>
        !options.Value.Sandbox.Enabled ? "turned off (Agents:Sandbox:Enabled is false)" : _sandbox.Status.Bubblewrap;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        if (Unavailable() is { } why)
        {
            return AgentTurnResult.Failed(why, sessionId);
        }
        var o = options.Value;
        var session = sessionId ?? Guid.NewGuid().ToString();
        var gate = SessionLocks.GetOrAdd(session, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var history = LoadHistory(session);
            history.Add(new JsonObject { ["role"] = "user", ["content"] = prompt });

            using var client = new AnthropicClient(new Anthropic.Core.ClientOptions
            {
                ApiKey = o.AnthropicApiKey,
                BaseUrl = string.IsNullOrWhiteSpace(o.AnthropicBaseUrl) ? "https://api.anthropic.com" : o.AnthropicBaseUrl,
                MaxRetries = 2,
            });

            long input = 0, output = 0;
            var todos = new List<TodoItem>();
            for (var iteration = 1; iteration <= o.Anthropic.MaxIterations; iteration++)
            {
                var parameters = new MessageCreateParams
                {
                    Model = o.Anthropic.Model,
                    MaxTokens = o.Anthropic.MaxTokens,
                    System = context.Instructions,
                    Messages = history.Select(m => new MessageParam(JsonSerializer.SerializeToElement(m))).ToList(),
                    Tools = ToolDefinitions,
                };
                var message = await client.Messages.Create(parameters, cancellationToken);
                input += message.Usage.InputTokens + (message.Usage.CacheReadInputTokens ?? 0) + (message.Usage.CacheCreationInputTokens ?? 0);
                output += message.Usage.OutputTokens;

                var assistantContent = new JsonArray();
                var results = new JsonArray();
                foreach (var block in message.Content)
                {
                    assistantContent.Add(JsonNode.Parse(block.Json.GetRawText()));
                    if (block.TryPickText(out var text) && !string.IsNullOrWhiteSpace(text.Text))
                    {
                        await context.Events.PublishAsync(context.ProjectId, new AgentMessage(text.Text), cancellationToken);
                    }
                    else if (block.TryPickToolUse(out var toolUse))
                    {
                        var toolInput = JsonSerializer.SerializeToElement(toolUse.Input);
                        var summary = ToolSummaries.Input(toolUse.Name, toolInput, context.ProjectPath);
                        await context.Events.PublishAsync(context.ProjectId, new ToolUse(toolUse.ID, toolUse.Name, summary, ToolStatuses.Running), cancellationToken);
                        var (ok, resultText) = await RunToolAsync(context, toolUse.Name, toolInput, todos, cancellationToken);
                        await context.Events.PublishAsync(
                            context.ProjectId,
                            new ToolUse(toolUse.ID, toolUse.Name, summary, ok ? ToolStatuses.Succeeded : ToolStatuses.Failed, ToolSummaries.Shorten(resultText)),
                            cancellationToken);
                        if (toolUse.Name == "update_todos")
                        {
                            await context.Events.PublishAsync(context.ProjectId, new TodosUpdated(todos.ToList()), cancellationToken);
                        }
                        results.Add(new JsonObject
                        {
                            ["type"] = "tool_result",
                            ["tool_use_id"] = toolUse.ID,
                            ["content"] = resultText,
                            ["is_error"] = !ok,
                        });
                    }
                }
                history.Add(new JsonObject { ["role"] = "assistant", ["content"] = assistantContent });
                if (results.Count == 0)
                {
                    SaveHistory(session, history);
                    return new AgentTurnResult(true, session, Cost(input, output), input, output, iteration, Todos: todos);
                }
                history.Add(new JsonObject { ["role"] = "user", ["content"] = results });
                SaveHistory(session, history);
            }
            return new AgentTurnResult(false, session, Cost(input, output), input, output, o.Anthropic.MaxIterations,
                $"The agent did not finish within {o.Anthropic.MaxIterations} model calls.", todos);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return AgentTurnResult.Failed($"Anthropic API: {e.Message}", session);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<(bool Ok, string Result)> RunToolAsync(AgentTurnContext context, string name, JsonElement input, List<TodoItem> todos, CancellationToken cancellationToken)
    {
        string Arg(string key) => input.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        try
        {
            switch (name)
            {
                case "read_file":
                {
                    var path = workspace.Resolve(context.ProjectPath, Arg("path"));
                    var text = await File.ReadAllTextAsync(path, cancellationToken);
                    return (true, text.Length > MaxToolOutput ? text[..MaxToolOutput] + "\n[truncated]" : text);
                }
                case "write_file":
                {
                    var path = workspace.Resolve(context.ProjectPath, Arg("path"));
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    await File.WriteAllTextAsync(path, Arg("content"), cancellationToken);
                    return (true, $"Wrote {Path.GetRelativePath(context.ProjectPath, path)}.");
                }
                case "list_files":
                {
                    var relative = Arg("path");
                    var dir = workspace.Resolve(context.ProjectPath, relative.Length == 0 ? "." : relative);
                    var entries = Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 4 })
                        .Select(p => Path.GetRelativePath(context.ProjectPath, p))
                        .Where(p => !p.Split(Path.DirectorySeparatorChar).Any(s => s is "node_modules" or ".git" or "dist" or ".next"))
                        .Order(StringComparer.Ordinal)
                        .Take(500);
                    return (true, string.Join("\n", entries));
                }
                case "run_command":
                    return await RunCommandAsync(context.ProjectPath, Arg("command"), cancellationToken);
                case "update_todos":
                    todos.Clear();
                    if (input.TryGetProperty("todos", out var list) && list.ValueKind == JsonValueKind.Array)
                    {
                        todos.AddRange(list.EnumerateArray().Select(t => new TodoItem(
                            t.TryGetProperty("content", out var c) ? c.GetString() ?? "" : "",
                            t.TryGetProperty("status", out var s) ? s.GetString() ?? TodoStatuses.Pending : TodoStatuses.Pending)));
                    }
                    return (true, $"{todos.Count} todos, {todos.Count(t => t.Status != TodoStatuses.Completed)} open.");
                default:
                    return (false, $"Unknown tool '{name}'.");
            }
        }
        catch (Exception e) when (e is WorkspaceException or IOException or UnauthorizedAccessException)
        {
            return (false, e.Message);
        }
    }

    private async Task<(bool, string)> RunCommandAsync(string projectPath, string commandLine, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(commandLine))
        {
            return (false, "The command is empty.");
        }
        var set = new Dictionary<string, string?>();
        string? scratch = null;
        Func<IReadOnlyList<string>, Command>? confine = null;
        if (!OperatingSystem.IsWindows() && NotSandboxed() is null && ExecutableLocator.Find("bwrap") is { } bwrap)
        {
            // Writable in there: the project and a scratch folder of this command (its TMPDIR and npm's cache, as the
            // home is read-only). Everything else, /tmp included, is read-only.
            scratch = OwnerOnly.Directory(Path.Join(Path.GetTempPath(), "sentryvibe-shell-" + Guid.NewGuid().ToString("N")[..12]));
            var writable = scratch;
            confine = argv => Cli.Wrap(bwrap).WithArguments(AgentSandbox.BubblewrapArguments([projectPath, writable], projectPath, argv));
            set["TMPDIR"] = scratch;
            set["npm_config_cache"] = Path.Join(scratch, "npm-cache");
        }
        ShellOutcome outcome;
        try
        {
            outcome = await ShellCommand.RunAsync(commandLine, projectPath, _environment.For(set: set), options.Value.Anthropic.CommandTimeout,
                CappedOutput.FirstCharacters(MaxToolOutput), cancellationToken, confine);
        }
        finally
        {
            if (scratch is not null)
            {
                try
                {
                    Build.FileSystem.DeleteDirectory(scratch);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (outcome.TimedOut)
        {
            return (false, $"Timed out after {options.Value.Anthropic.CommandTimeout}.\n{outcome.Output}");
        }
        return (outcome.ExitCode == 0, $"exit code {outcome.ExitCode}\n{outcome.Output}");
    }

    private decimal Cost(long input, long output) =>
        (input * options.Value.Anthropic.InputPricePerMillionTokens + output * options.Value.Anthropic.OutputPricePerMillionTokens) / 1_000_000m;

    private string SessionFile(string session) => Path.Join(workspaceOptions.Value.ResolvedHome, "sessions", $"{Slugs.From(session)}.json");

    private List<JsonNode> LoadHistory(string session)
    {
        var file = SessionFile(session);
        return File.Exists(file) && JsonNode.Parse(File.ReadAllText(file)) is JsonArray array
            ? array.Where(n => n is not null).Select(n => n!.DeepClone()).ToList()
            : [];
    }

    private void SaveHistory(string session, List<JsonNode> history)
    {
        var file = SessionFile(session);
        OwnerOnly.Directory(Path.GetDirectoryName(file)!);
        OwnerOnly.WriteAllText(file, new JsonArray(history.Select(h => h.DeepClone()).ToArray()).ToJsonString());
    }

    private static readonly IReadOnlyList<ToolUnion> ToolDefinitions = new[]
    {
        Tool("read_file", "Read a UTF-8 text file of the project.", """{"type":"object","properties":{"path":{"type":"string","description":"Path relative to the project folder"}},"required":["path"]}"""),
        Tool("write_file", "Create or overwrite a file of the project with the given content.", """{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}"""),
        Tool("list_files", "List files under a folder of the project (node_modules and build output are left out).", """{"type":"object","properties":{"path":{"type":"string","description":"Folder relative to the project; default the project root"}}}"""),
        Tool("run_command", "Run a shell command in the project folder (e.g. npm install, npm run build). Do not start long-running dev servers.", """{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}"""),
        Tool("update_todos", "Replace the todo list of this build. Use it to plan and to mark progress.", """{"type":"object","properties":{"todos":{"type":"array","items":{"type":"object","properties":{"content":{"type":"string"},"status":{"type":"string","enum":["pending","in_progress","completed"]}},"required":["content","status"]}}},"required":["todos"]}"""),
    };

    private static ToolUnion Tool(string name, string description, string schema) =>
        new(JsonSerializer.SerializeToElement(new JsonObject
        {
            ["name"] = name,
            ["description"] = description,
            ["input_schema"] = JsonNode.Parse(schema),
        }));
}
