// A TCP relay that holds every chunk for a fixed time in each direction: a database on another host (a hosted broker's
// Postgres is a separate service, a round trip of about a millisecond away), on one machine. `events --db-rtt <ms>`.
// Without a delay it is the plainest forwarder there is (a 64 KiB copy loop each way): two of them in a row are the
// preview relay's floor in `relay`, its three loopback hops with nothing else.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Collections.Concurrent;

namespace SentryVibe.Bench;

public sealed class DelayProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly TimeSpan _oneWay;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private readonly Task _accepting;

    private DelayProxy(int targetPort, TimeSpan oneWay)
    {
        _targetPort = targetPort;
        _oneWay = oneWay;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Relays to <paramref name="targetPort"/> with half of <paramref name="roundTrip"/> added each way.</summary>
    public static DelayProxy Start(int targetPort, TimeSpan roundTrip) => new(targetPort, roundTrip / 2);

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var server = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                client.NoDelay = true;
                await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                lock (_sockets) _sockets.AddRange([client, server]);
                _ = _oneWay > TimeSpan.Zero ? RelayAsync(client, server) : CopyAsync(client, server);
                _ = _oneWay > TimeSpan.Zero ? RelayAsync(server, client) : CopyAsync(server, client);
            }
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
    }

    /// <summary>
    /// Reads as fast as the source sends; a thread of its own writes each chunk once its delay is over, in order (a
    /// timer-based Task.Delay of 1 ms fires after about 4 ms here; a thread's sleep after about 1.1 ms).
    /// </summary>
    private async Task RelayAsync(Socket from, Socket to)
    {
        var chunks = new BlockingCollection<(long Due, byte[] Data)>();
        var writer = new Thread(() =>
        {
            try
            {
                foreach (var (due, data) in chunks.GetConsumingEnumerable(_stop.Token))
                {
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (wait > TimeSpan.Zero) Thread.Sleep(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)));
                    to.Send(data);
                }
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        }) { IsBackground = true, Name = "delay relay" };
        writer.Start();
        var buffer = new byte[64 * 1024];
        var delay = (long)(_oneWay.TotalSeconds * Stopwatch.Frequency);
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                chunks.Add((Stopwatch.GetTimestamp() + delay, buffer[..read]));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        chunks.CompleteAdding();
    }

    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_sockets) foreach (var socket in _sockets) socket.Dispose();
        try { await _accepting; } catch (Exception) { }
        _stop.Dispose();
    }
}
