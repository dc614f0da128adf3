// A loopback stand-in for the OpenAI Responses API that answers with scripted output items, so the real Codex CLI
// can be driven end to end without a model (as ScriptedAnthropicServer does for Claude Code).
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SentryVibe.Testing;

/// <summary>One output item of a scripted response.</summary>
public abstract record ScriptedItem
{
    public static ScriptedItem Message(string text) => new MessageItem(text);

    /// <summary>A function call (e.g. <c>exec_command</c>, <c>update_plan</c>); <paramref name="arguments"/> is serialized as JSON.</summary>
    public static ScriptedItem FunctionCall(string name, object arguments) =>
        new FunctionCallItem($"call_{Guid.NewGuid():N}"[..24], name, JsonSerializer.Serialize(arguments));

    /// <summary>A freeform tool call (Codex's <c>apply_patch</c> takes the patch text as is).</summary>
    public static ScriptedItem CustomCall(string name, string input) => new CustomCallItem($"call_{Guid.NewGuid():N}"[..24], name, input);

    public sealed record MessageItem(string Text) : ScriptedItem;

    public sealed record FunctionCallItem(string CallId, string Name, string Arguments) : ScriptedItem;

    public sealed record CustomCallItem(string CallId, string Name, string Input) : ScriptedItem;
}

/// <summary>A scripted model response. Input tokens count the cached ones, as the API does.</summary>
public sealed record ScriptedResponse(IReadOnlyList<ScriptedItem> Items, int InputTokens = 120, int CachedInputTokens = 20, int OutputTokens = 40)
{
    /// <summary>When set, the response is held back until this task completes (to hold an agent mid-turn).</summary>
    public Task? Gate { get; init; }
}

/// <summary>A request the server received.</summary>
public sealed class ScriptedResponsesRequest(string path, IHeaderDictionary headers, JsonElement body)
{
    public string Path { get; } = path;

    public JsonElement Body { get; } = body;

    /// <summary>The <c>session-id</c> header Codex sends (its thread id).</summary>
    public string? SessionId { get; } = headers["session-id"].FirstOrDefault();

    public string? Authorization { get; } = headers.Authorization.FirstOrDefault();

    public string? Model => Body.TryGetProperty("model", out var m) ? m.GetString() : null;

    /// <summary>Names of the tools offered (top-level ones).</summary>
    public IReadOnlyList<string> ToolNames =>
        Body.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array
            ? tools.EnumerateArray().Select(t => t.TryGetProperty("name", out var n) ? n.GetString() ?? "" : t.GetProperty("type").GetString() ?? "").ToList()
            : [];

    /// <summary>All of the input (prompts, earlier calls, tool outputs), for assertions.</summary>
    public string AllText => Body.TryGetProperty("input", out var input) ? input.GetRawText() : "";

    /// <summary>The outputs of tool calls in the input, by call id.</summary>
    public IReadOnlyDictionary<string, string> ToolOutputs =>
        Body.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.Array
            ? input.EnumerateArray()
                .Where(i => i.TryGetProperty("type", out var t) && t.GetString() is "function_call_output" or "custom_tool_call_output")
                .GroupBy(i => i.GetProperty("call_id").GetString() ?? "")
                .ToDictionary(g => g.Key, g => g.Last().TryGetProperty("output", out var o) ? (o.ValueKind == JsonValueKind.String ? o.GetString() ?? "" : o.GetRawText()) : "")
            : new Dictionary<string, string>();
}

/// <summary>
/// Kestrel on 127.0.0.1 with a random port. <c>POST /v1/responses</c> takes the next scripted response and streams it
/// as server-sent events (response.created, response.output_item.added/done with text deltas, response.completed
/// with usage) or returns it as JSON when the request is not streaming; with nothing scripted it answers a short
/// message. <c>GET /v1/models</c> lists nothing. Point a client at <see cref="ApiBaseUrl"/>.
/// </summary>
public sealed class ScriptedOpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ScriptedResponse> _responses = new();
    private readonly ConcurrentQueue<ScriptedResponsesRequest> _requests = new();
    private int _counter;

    private ScriptedOpenAiServer(WebApplication app)
    {
        _app = app;
    }

    public string BaseUrl { get; private set; } = "";

    /// <summary>The base URL an OpenAI client takes (ends in /v1).</summary>
    public string ApiBaseUrl => BaseUrl.TrimEnd('/') + "/v1";

    /// <summary>Text used for requests with nothing scripted.</summary>
    public string DefaultText { get; set; } = "Done.";

    public IReadOnlyList<ScriptedResponsesRequest> Requests => _requests.ToArray();

    public int PendingResponses => _responses.Count;

    public static async Task<ScriptedOpenAiServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new ScriptedOpenAiServer(app);
        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = Array.Empty<object>() }));
        app.MapPost("/v1/responses", server.HandleResponsesAsync);
        await app.StartAsync(cancellationToken);
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return server;
    }

    public ScriptedOpenAiServer Enqueue(ScriptedResponse response)
    {
        _responses.Enqueue(response);
        return this;
    }

    public ScriptedOpenAiServer Enqueue(params ScriptedItem[] items) => Enqueue(new ScriptedResponse(items));

    public ScriptedOpenAiServer EnqueueMessage(string text) => Enqueue(ScriptedItem.Message(text));

    private async Task HandleResponsesAsync(HttpContext context)
    {
        using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var request = new ScriptedResponsesRequest(context.Request.Path, context.Request.Headers, document.RootElement.Clone());
        _requests.Enqueue(request);
        var response = _responses.TryDequeue(out var next) ? next : new ScriptedResponse([ScriptedItem.Message(DefaultText)]);
        if (response.Gate is not null)
        {
            await response.Gate.WaitAsync(context.RequestAborted);
        }
        var n = Interlocked.Increment(ref _counter);
        var id = $"resp_{n:D6}";
        var items = response.Items.Select((item, i) => Item(item, $"item_{n:D6}_{i}")).ToList();
        var stream = request.Body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        if (!stream)
        {
            await context.Response.WriteAsync(Response(id, request.Model, response, items, "completed").ToJsonString(), context.RequestAborted);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var sb = new StringBuilder();
        var sequence = 0;
        void Event(string type, JsonObject data)
        {
            data["type"] = type;
            data["sequence_number"] = sequence++;
            sb.Append("event: ").Append(type).Append("\ndata: ").Append(data.ToJsonString()).Append("\n\n");
        }

        Event("response.created", new JsonObject { ["response"] = Response(id, request.Model, response, [], "in_progress") });
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            Event("response.output_item.added", new JsonObject { ["output_index"] = i, ["item"] = item.DeepClone() });
            if (response.Items[i] is ScriptedItem.MessageItem message)
            {
                Event("response.output_text.delta", new JsonObject
                {
                    ["item_id"] = item["id"]!.DeepClone(),
                    ["output_index"] = i,
                    ["content_index"] = 0,
                    ["delta"] = message.Text,
                });
            }
            Event("response.output_item.done", new JsonObject { ["output_index"] = i, ["item"] = item.DeepClone() });
        }
        Event("response.completed", new JsonObject { ["response"] = Response(id, request.Model, response, items, "completed") });
        await context.Response.WriteAsync(sb.ToString(), context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static JsonObject Item(ScriptedItem item, string id) => item switch
    {
        ScriptedItem.MessageItem m => new JsonObject
        {
            ["type"] = "message",
            ["id"] = id,
            ["role"] = "assistant",
            ["status"] = "completed",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = m.Text, ["annotations"] = new JsonArray() }),
        },
        ScriptedItem.FunctionCallItem f => new JsonObject
        {
            ["type"] = "function_call",
            ["id"] = id,
            ["call_id"] = f.CallId,
            ["name"] = f.Name,
            ["arguments"] = f.Arguments,
            ["status"] = "completed",
        },
        ScriptedItem.CustomCallItem c => new JsonObject
        {
            ["type"] = "custom_tool_call",
            ["id"] = id,
            ["call_id"] = c.CallId,
            ["name"] = c.Name,
            ["input"] = c.Input,
            ["status"] = "completed",
        },
        _ => throw new InvalidOperationException(),
    };

    private static JsonObject Response(string id, string? model, ScriptedResponse response, IReadOnlyList<JsonObject> items, string status) => new()
    {
        ["id"] = id,
        ["object"] = "response",
        ["status"] = status,
        ["model"] = model ?? "scripted",
        ["output"] = new JsonArray(items.Select(i => (JsonNode)i.DeepClone()).ToArray()),
        ["usage"] = status == "completed"
            ? new JsonObject
            {
                ["input_tokens"] = response.InputTokens,
                ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = response.CachedInputTokens },
                ["output_tokens"] = response.OutputTokens,
                ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
                ["total_tokens"] = response.InputTokens + response.OutputTokens,
            }
            : null,
    };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
