// A loopback stand-in for the Anthropic Messages API that answers with scripted replies, so the real Claude Code
// CLI (or any SDK) can be driven end to end without a model.
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

/// <summary>One content block of a scripted reply.</summary>
public abstract record ScriptedBlock
{
    public static ScriptedBlock Text(string text) => new TextBlock(text);

    /// <summary>A tool call; <paramref name="input"/> is serialized as JSON (anonymous objects are fine).</summary>
    public static ScriptedBlock ToolUse(string name, object input, string? id = null) =>
        new ToolUseBlock(id ?? $"toolu_{Guid.NewGuid():N}"[..30], name, JsonSerializer.SerializeToNode(input) as JsonObject ?? []);

    public sealed record TextBlock(string Value) : ScriptedBlock;

    public sealed record ToolUseBlock(string Id, string Name, JsonObject Input) : ScriptedBlock;
}

/// <summary>A scripted assistant message. The stop reason is tool_use when it has tool calls, else end_turn.</summary>
public sealed record ScriptedReply(IReadOnlyList<ScriptedBlock> Blocks, int InputTokens = 120, int OutputTokens = 40)
{
    /// <summary>When set, the reply is held back until this task completes (to hold an agent mid-turn).</summary>
    public Task? Gate { get; init; }

    public string StopReason => Blocks.Any(b => b is ScriptedBlock.ToolUseBlock) ? "tool_use" : "end_turn";
}

/// <summary>A request the server received.</summary>
public sealed class ScriptedRequest(string path, JsonElement body)
{
    public string Path { get; } = path;

    public JsonElement Body { get; } = body;

    public bool Stream => Body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;

    public IReadOnlyList<string> ToolNames =>
        Body.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array
            ? tools.EnumerateArray().Select(t => t.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "").ToList()
            : [];

    public int MessageCount => Body.TryGetProperty("messages", out var m) && m.ValueKind == JsonValueKind.Array ? m.GetArrayLength() : 0;

    /// <summary>All text the request's messages contain (prompts, tool results), for assertions.</summary>
    public string AllText => Body.TryGetProperty("messages", out var m) ? m.GetRawText() : "";

    /// <summary>The tool_result blocks of the last message: (tool_use_id, is_error, content as text).</summary>
    public IReadOnlyList<(string ToolUseId, bool IsError, string Content)> ToolResults
    {
        get
        {
            if (!Body.TryGetProperty("messages", out var messages) || messages.GetArrayLength() == 0)
            {
                return [];
            }
            var last = messages[messages.GetArrayLength() - 1];
            if (!last.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
            {
                return [];
            }
            return content.EnumerateArray()
                .Where(b => b.TryGetProperty("type", out var t) && t.GetString() == "tool_result")
                .Select(b => (
                    b.GetProperty("tool_use_id").GetString() ?? "",
                    b.TryGetProperty("is_error", out var e) && e.ValueKind == JsonValueKind.True,
                    b.TryGetProperty("content", out var c) ? (c.ValueKind == JsonValueKind.String ? c.GetString() ?? "" : c.GetRawText()) : ""))
                .ToList();
        }
    }
}

/// <summary>
/// Kestrel on 127.0.0.1 with a random port. <c>HEAD /</c> answers 200; <c>POST /v1/messages</c> takes the next
/// scripted reply for "main" requests (by default: requests that offer tools) and streams it as server-sent events
/// (message_start, content_block_start/delta/stop, message_delta, message_stop) or returns it as JSON when the
/// request is not streaming. Requests with no scripted reply left, and side requests (titles, summaries), get a
/// short text with end_turn.
/// </summary>
public sealed class ScriptedAnthropicServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ScriptedReply> _replies = new();
    private readonly ConcurrentQueue<ScriptedRequest> _requests = new();
    private readonly ConcurrentQueue<ScriptedRequest> _sideRequests = new();
    private int _messageCounter;

    private ScriptedAnthropicServer(WebApplication app)
    {
        _app = app;
    }

    public string BaseUrl { get; private set; } = "";

    /// <summary>Decides which requests consume scripted replies.</summary>
    public Func<ScriptedRequest, bool> IsMainRequest { get; set; } = r => r.ToolNames.Count > 0;

    /// <summary>Text used for requests with nothing scripted.</summary>
    public string DefaultText { get; set; } = "Done.";

    public IReadOnlyList<ScriptedRequest> Requests => _requests.ToArray();

    public IReadOnlyList<ScriptedRequest> SideRequests => _sideRequests.ToArray();

    public int PendingReplies => _replies.Count;

    public static async Task<ScriptedAnthropicServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new ScriptedAnthropicServer(app);
        app.MapMethods("/", ["HEAD", "GET"], () => Results.Ok());
        app.MapPost("/v1/messages", server.HandleMessagesAsync);
        app.MapPost("/v1/messages/count_tokens", () => Results.Json(new { input_tokens = 100 }));
        await app.StartAsync(cancellationToken);
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return server;
    }

    public ScriptedAnthropicServer Enqueue(ScriptedReply reply)
    {
        _replies.Enqueue(reply);
        return this;
    }

    public ScriptedAnthropicServer Enqueue(params ScriptedBlock[] blocks) => Enqueue(new ScriptedReply(blocks));

    public ScriptedAnthropicServer EnqueueText(string text) => Enqueue(ScriptedBlock.Text(text));

    private async Task HandleMessagesAsync(HttpContext context)
    {
        using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var request = new ScriptedRequest(context.Request.Path + context.Request.QueryString, document.RootElement.Clone());
        ScriptedReply reply;
        if (IsMainRequest(request))
        {
            _requests.Enqueue(request);
            reply = _replies.TryDequeue(out var next) ? next : new ScriptedReply([ScriptedBlock.Text(DefaultText)]);
        }
        else
        {
            _sideRequests.Enqueue(request);
            reply = new ScriptedReply([ScriptedBlock.Text(DefaultText)], 20, 5);
        }
        if (reply.Gate is not null)
        {
            await reply.Gate.WaitAsync(context.RequestAborted);
        }
        var model = request.Body.TryGetProperty("model", out var m) ? m.GetString() ?? "claude-sonnet-4-5" : "claude-sonnet-4-5";
        var id = $"msg_{Interlocked.Increment(ref _messageCounter):D6}";
        if (request.Stream)
        {
            await StreamAsync(context, reply, id, model);
        }
        else
        {
            await context.Response.WriteAsJsonAsync(Message(reply, id, model, complete: true), context.RequestAborted);
        }
    }

    private static async Task StreamAsync(HttpContext context, ScriptedReply reply, string id, string model)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var ct = context.RequestAborted;
        var sb = new StringBuilder();
        void Event(string name, JsonObject data) => sb.Append("event: ").Append(name).Append("\ndata: ").Append(data.ToJsonString()).Append("\n\n");

        var start = Message(reply, id, model, complete: false);
        Event("message_start", new JsonObject { ["type"] = "message_start", ["message"] = start });
        for (var i = 0; i < reply.Blocks.Count; i++)
        {
            switch (reply.Blocks[i])
            {
                case ScriptedBlock.TextBlock text:
                    Event("content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = i, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" } });
                    Event("content_block_delta", new JsonObject { ["type"] = "content_block_delta", ["index"] = i, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = text.Value } });
                    break;
                case ScriptedBlock.ToolUseBlock tool:
                    Event("content_block_start", new JsonObject
                    {
                        ["type"] = "content_block_start",
                        ["index"] = i,
                        ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = tool.Id, ["name"] = tool.Name, ["input"] = new JsonObject() },
                    });
                    Event("content_block_delta", new JsonObject
                    {
                        ["type"] = "content_block_delta",
                        ["index"] = i,
                        ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = tool.Input.ToJsonString() },
                    });
                    break;
            }
            Event("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = i });
        }
        Event("message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = reply.StopReason, ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["output_tokens"] = reply.OutputTokens },
        });
        Event("message_stop", new JsonObject { ["type"] = "message_stop" });
        await context.Response.WriteAsync(sb.ToString(), ct);
        await context.Response.Body.FlushAsync(ct);
    }

    private static JsonObject Message(ScriptedReply reply, string id, string model, bool complete)
    {
        var content = new JsonArray();
        if (complete)
        {
            foreach (var block in reply.Blocks)
            {
                content.Add(block switch
                {
                    ScriptedBlock.TextBlock t => new JsonObject { ["type"] = "text", ["text"] = t.Value },
                    ScriptedBlock.ToolUseBlock u => new JsonObject { ["type"] = "tool_use", ["id"] = u.Id, ["name"] = u.Name, ["input"] = u.Input.DeepClone() },
                    _ => throw new InvalidOperationException(),
                });
            }
        }
        return new JsonObject
        {
            ["id"] = id,
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = model,
            ["content"] = content,
            ["stop_reason"] = complete ? reply.StopReason : null,
            ["stop_sequence"] = null,
            ["usage"] = new JsonObject
            {
                ["input_tokens"] = reply.InputTokens,
                ["output_tokens"] = complete ? reply.OutputTokens : 1,
                ["cache_creation_input_tokens"] = 0,
                ["cache_read_input_tokens"] = 0,
            },
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
