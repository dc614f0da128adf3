using Npgsql;

namespace SentryVibe.Broker.Link;

/// <summary>The exceptions that mean "the database is unavailable now": the call is answered Unavailable and retried.</summary>
internal static class DatabaseFailures
{
    public static bool Is(Exception e) =>
        e is NpgsqlException or TimeoutException
        || (e is InvalidOperationException && e.InnerException is not null && Is(e.InnerException));
}
