// Picks the dev server's port before it starts, so the port is known and can be passed in, not guessed afterwards.
using System.Net;
using System.Net.Sockets;

namespace SentryVibe.Runner.DevServers;

public sealed class PortAllocator
{
    private readonly HashSet<int> _reserved = [];
    private readonly object _gate = new();

    /// <summary>
    /// A port free on loopback and not handed to another dev server of this runner. The template's default port is
    /// preferred when free (stable local URLs); otherwise the OS picks one.
    /// </summary>
    public int Reserve(int? preferred = null)
    {
        lock (_gate)
        {
            if (preferred is > 0 and < 65536 && !_reserved.Contains(preferred.Value) && IsFree(preferred.Value))
            {
                _reserved.Add(preferred.Value);
                return preferred.Value;
            }
            for (var attempt = 0; attempt < 20; attempt++)
            {
                var port = AskOs();
                if (_reserved.Add(port))
                {
                    return port;
                }
            }
            throw new InvalidOperationException("No free TCP port was found on loopback.");
        }
    }

    public void Release(int port)
    {
        lock (_gate)
        {
            _reserved.Remove(port);
        }
    }

    public static bool IsFree(int port)
    {
        // A dev server may bind 127.0.0.1, ::1 or any address; the port is free only if all of them are.
        foreach (var address in new[] { IPAddress.Loopback, IPAddress.Any })
        {
            try
            {
                using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                listener.Bind(new IPEndPoint(address, port));
            }
            catch (SocketException)
            {
                return false;
            }
        }
        return true;
    }

    private static int AskOs()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }
}
