// What a prerendered page hands to its circuit so the circuit does not read it again (PersistentComponentState).
using System.Text.Json;
using Microsoft.AspNetCore.Components;

namespace SentryVibe.Web.Ui;

/// <summary>
/// The hand-over travels back from the browser inside the circuit's first SignalR message, and a message over the hub's
/// limit kills the circuit without a word. So the pieces of one response share a budget well under that limit; a piece
/// that does not fit is not handed over and the circuit reads it itself (Web/README.md, UI). Scoped: one per response.
/// </summary>
public sealed class HandOver(PersistentComponentState state)
{
    /// <summary>JSON bytes one response may hand over.</summary>
    public const int BudgetBytes = 128 * 1024;

    /// <summary>
    /// The circuit hub's MaximumReceiveMessageSize: the budget travels base64 inside base64 (×1.8) next to the
    /// components' descriptors. Only a signed-in browser reaches the hub (the fallback policy).
    /// </summary>
    public const long HubMessageLimit = 512 * 1024;

    private int _used;

    /// <summary>Persists <paramref name="value"/> under <paramref name="key"/> if it fits what is left of the budget.</summary>
    public bool TryPersist<T>(string key, T value)
    {
        var size = JsonSerializer.SerializeToUtf8Bytes(value, JsonSerializerOptions.Web).Length;
        if (_used + size > BudgetBytes) return false;
        _used += size;
        state.PersistAsJson(key, value);
        return true;
    }
}
