// A TCP forwarder that never lets the bytes into user space: Linux splice(2) moves them socket → pipe → socket inside the
// kernel, one blocking thread each way. Two in a row are the fastest three loopback hops this machine can make, whatever
// runs between them: the physical floor under the relay's three hops (dev server → runner → broker → client) in `relay`,
// next to DelayProxy's plain copy loop (docs/architecture.md, decision 10).
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SentryVibe.Bench;

public sealed class SpliceProxy : IDisposable
{
    private const int PipeBytes = 1 << 20;
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly int _targetPort;
    private readonly List<Socket> _sockets = [];
    private volatile bool _stopping;

    private SpliceProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        new Thread(Accept) { IsBackground = true, Name = "splice accept" }.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>Null where splice(2) is not there (not Linux).</summary>
    public static SpliceProxy? Start(int targetPort) => OperatingSystem.IsLinux() ? new(targetPort) : null;

    private void Accept()
    {
        try
        {
            while (!_stopping)
            {
                var client = _listener.Accept();
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                client.NoDelay = true;
                try
                {
                    server.Connect(IPAddress.Loopback, _targetPort);
                }
                catch (SocketException)
                {
                    // The target is not there: this connection ends, the next may find it.
                    client.Dispose();
                    server.Dispose();
                    continue;
                }
                lock (_sockets) _sockets.AddRange([client, server]);
                foreach (var (from, to) in new[] { (client, server), (server, client) })
                {
                    new Thread(() => Pump(from, to)) { IsBackground = true, Name = "splice pump" }.Start();
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>Source socket → pipe → destination socket until the source's end, then the destination's write side closes.</summary>
    private static void Pump(Socket from, Socket to)
    {
        var pipe = new int[2];
        if (Pipe2(pipe, 0x80000 /* O_CLOEXEC */) != 0) return;
        bool fromHeld = false, toHeld = false;
        try
        {
            // Held while spliced, so a Dispose meanwhile cannot close a descriptor number that another file then reuses.
            from.SafeHandle.DangerousAddRef(ref fromHeld);
            to.SafeHandle.DangerousAddRef(ref toHeld);
            Fcntl(pipe[1], 1031 /* F_SETPIPE_SZ */, PipeBytes); // best effort: the default pipe holds 64 KiB
            var source = (int)from.SafeHandle.DangerousGetHandle();
            var target = (int)to.SafeHandle.DangerousGetHandle();
            while (Move(source, pipe[1], PipeBytes) is var moved and > 0)
            {
                for (var left = moved; left > 0;)
                {
                    var sent = Move(pipe[0], target, (nuint)left);
                    if (sent <= 0) return; // the destination is gone: so is the connection
                    left -= sent;
                }
            }
            to.Shutdown(SocketShutdown.Send); // the source's end (0), or its error: the destination hears the end either way
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        finally
        {
            if (fromHeld) from.SafeHandle.DangerousRelease();
            if (toHeld) to.SafeHandle.DangerousRelease();
            Close(pipe[0]);
            Close(pipe[1]);
        }
    }

    /// <summary>One splice(2), again when a signal interrupted it: bytes moved, 0 at the end, -1 on an error.</summary>
    private static nint Move(int from, int to, nuint length)
    {
        const int interrupted = 4; // EINTR
        while (true)
        {
            var moved = Splice(from, IntPtr.Zero, to, IntPtr.Zero, length, 1 /* SPLICE_F_MOVE */);
            if (moved >= 0 || Marshal.GetLastPInvokeError() != interrupted) return moved;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _listener.Dispose();
        lock (_sockets)
        {
            foreach (var socket in _sockets)
            {
                // A pump blocked in splice(2) on the socket returns once it is shut down.
                try { socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                socket.Dispose();
            }
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code for these signatures; they are trivially blittable.
    [DllImport("libc", EntryPoint = "splice", SetLastError = true)]
    private static extern nint Splice(int fdIn, IntPtr offIn, int fdOut, IntPtr offOut, nuint length, uint flags);

    [DllImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static extern int Pipe2(int[] fds, int flags);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054
}
