namespace SentryVibe.Data;

/// <summary>
/// The payload of a NOTIFY on <see cref="SentryVibeDb.EventsChannel"/>: "projectId:eventId", the newest event row of
/// that project. Written by the Broker's event intake and by Web, read by Web's event streams.
/// </summary>
public readonly record struct EventNotification(Guid ProjectId, long EventId)
{
    public static string Format(Guid projectId, long eventId) => $"{projectId}:{eventId}";

    /// <summary>False when the project id does not parse; a missing or bad event id reads as 0.</summary>
    public static bool TryParse(string payload, out EventNotification notification)
    {
        var parts = payload.Split(':', 2);
        if (!Guid.TryParse(parts[0], out var projectId))
        {
            notification = default;
            return false;
        }
        notification = new(projectId, parts.Length > 1 && long.TryParse(parts[1], out var id) ? id : 0);
        return true;
    }
}
