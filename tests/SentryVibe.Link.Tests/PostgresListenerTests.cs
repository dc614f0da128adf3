using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>The one LISTEN/NOTIFY listener Web and Broker share (Data/PostgresListener.cs).</summary>
public sealed class PostgresListenerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_listener_reconnects_after_Postgres_restarts_calls_back_to_catch_up_and_hears_notifications_again()
    {
        var root = Paths.TempDirectory("listener");
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        using var stop = new CancellationTokenSource();
        Task? running = null;
        try
        {
            await using var cluster = new RestartablePostgres(binaries, Path.Combine(root, "pg"));
            await cluster.StartAsync();
            var db = await cluster.CreateDatabaseAsync("listenertest");
            await using var dataSource = NpgsqlDataSource.Create(db);
            var heard = new ConcurrentQueue<string>();
            var connects = 0;
            var listener = new PostgresListener(dataSource, NullLogger.Instance, "listener_test")
            {
                OnNotification = (channel, payload) => heard.Enqueue($"{channel}={payload}"),
                OnConnected = _ => { Interlocked.Increment(ref connects); return Task.CompletedTask; },
                InitialBackoff = TimeSpan.FromMilliseconds(100),
                MaxBackoff = TimeSpan.FromMilliseconds(500),
            };
            running = listener.RunAsync(stop.Token);

            await Eventually.WaitAsync(() => Volatile.Read(ref connects) == 1, Wait, "the listener to connect");
            await Database.ExecuteAsync(db, "NOTIFY listener_test, 'before'");
            await Eventually.WaitAsync(() => heard.Contains("listener_test=before"), Wait, "the first notification");

            cluster.Kill();
            await cluster.StartAsync();
            await Eventually.WaitAsync(() => Volatile.Read(ref connects) == 2, Wait, "the listener to reconnect and call back to catch up");
            await Database.ExecuteAsync(db, "NOTIFY listener_test, 'after'");
            await Eventually.WaitAsync(() => heard.Contains("listener_test=after"), Wait, "a notification after the restart");

            stop.Cancel();
            await running.WaitAsync(Wait); // stopping ends the loop without throwing
        }
        finally
        {
            stop.Cancel();
            if (running is not null) await Task.WhenAny(running, Task.Delay(Wait));
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    [Theory]
    [InlineData(42L)]
    [InlineData(0L)]
    public void An_event_notification_reads_back_as_written(long eventId)
    {
        var project = Guid.NewGuid();
        Assert.True(EventNotification.TryParse(EventNotification.Format(project, eventId), out var read));
        Assert.Equal(new EventNotification(project, eventId), read);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not-a-guid:5")]
    public void A_payload_without_a_project_id_is_not_an_event_notification(string payload) =>
        Assert.False(EventNotification.TryParse(payload, out _));
}
