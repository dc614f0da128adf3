using System.Net;
using System.Net.Sockets;

namespace SentryVibe.Testing;

/// <summary>
/// An HttpClient that reaches <c>*.localhost</c> preview hosts: .NET's resolver does not map them to loopback the
/// way Chromium does, so connections go to 127.0.0.1 while the request keeps its preview Host.
/// </summary>
public static class LoopbackHttp
{
    public static HttpClient Create(TimeSpan? timeout = null) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        ConnectCallback = async (context, ct) =>
        {
            var host = context.DnsEndPoint.Host;
            var address = host == "localhost" || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
                ? IPAddress.Loopback
                : (await Dns.GetHostAddressesAsync(host, ct))[0];
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = timeout ?? TimeSpan.FromSeconds(30),
    };
}
