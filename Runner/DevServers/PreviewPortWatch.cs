// Which port of a starting dev server is the preview: the probes of the port the runner chose and of the ports the
// output names.
using System.Net;
using System.Net.Sockets;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

internal static class PreviewPortWatch
{
    /// <summary>
    /// Waits for the preview port (docs/architecture.md, "Which port is the preview"). The port the runner chose
    /// counts once it accepts connections and, where /proc tells, a process of the dev server's own tree listens on
    /// it. When the template passes that port on the command line, it is the only candidate: a port the output
    /// names (an API the dev script starts first, say) never replaces it. Without a port argument the port is only
    /// offered in PORT, so a port the output names is taken when the dev server's own tree listens on it and it
    /// answers HTML at <c>/</c>; a port another program holds is never taken.
    /// </summary>
    /// <returns>Null when the dev server ended, or <paramref name="ct"/> was cancelled, before a port was ready.</returns>
    public static async Task<int?> WaitAsync(DevServerSession s, SupervisedProcess devServer, TimeSpan slowStartNotice, CancellationToken ct)
    {
        try
        {
            int? ready = null;
            var startedAt = Environment.TickCount64;
            var noticed = false;
            var passed = s.Plan.PassesPort;
            var settled = new HashSet<int>();
            while (ready is null && !ct.IsCancellationRequested && !devServer.Completion.IsCompleted)
            {
                if (!noticed && Environment.TickCount64 - startedAt >= (long)slowStartNotice.TotalMilliseconds)
                {
                    noticed = true;
                    s.AddLine($"[sentryvibe] Still waiting for the dev server to accept connections on port {s.Port} " +
                        (passed
                            ? "(the port the runner passed in its port argument). If it listens elsewhere, make it honour the port argument."
                            : "(or to print the local URL of a page it serves). If it uses another port, make its run command honour PORT."), "stderr");
                }
                var announced = s.AnnouncedPorts();
                if (await AcceptsAsync(s.Port!.Value, ct) && OwnedBy(devServer, s.Port.Value) != false)
                {
                    ready = s.Port;
                    break;
                }
                foreach (var port in announced.Where(p => p != s.Port && !settled.Contains(p)))
                {
                    if (passed)
                    {
                        settled.Add(port);
                        s.AddLine($"[sentryvibe] The output names port {port}; the preview stays on port {s.Port}, the one the runner passed.", "stdout");
                        continue;
                    }
                    if (!await AcceptsAsync(port, ct))
                    {
                        continue; // announced a moment before it listens
                    }
                    var owned = OwnedBy(devServer, port);
                    if (owned != true)
                    {
                        settled.Add(port);
                        s.AddLine(owned is null
                            ? $"[sentryvibe] The output names port {port}, but this system cannot tell which program listens there; not previewed. Make the run command honour PORT."
                            : $"[sentryvibe] The output names port {port}, but another program listens there; not previewed.", "stderr");
                        continue;
                    }
                    var html = await ServesHtmlAsync(port, ct);
                    if (html == true)
                    {
                        ready = port;
                        break;
                    }
                    if (html == false)
                    {
                        settled.Add(port);
                        s.AddLine($"[sentryvibe] Port {port} (named in the output) does not answer HTML at /; not previewed.", "stdout");
                    }
                }
                if (ready is not null)
                {
                    break;
                }
                await Task.WhenAny(s.PortAnnounced, Task.Delay(150, ct));
            }
            return ct.IsCancellationRequested ? null : ready;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Whether a process of the dev server's tree (or process group) listens on the port; null where unknown.</summary>
    private static bool? OwnedBy(SupervisedProcess devServer, int port) =>
        devServer.ProcessId > 0
            ? ProcessTable.Listens(ProcessTable.TreeAndGroup(devServer.ProcessId, devServer.OwnGroup ? devServer.ProcessId : null), port)
            : ProcessTable.HasProcFs ? false : null;

    private static readonly HttpClient Probe = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>Whether GET / answers with a text/html content type; null when it could not be asked (yet).</summary>
    private static async Task<bool?> ServesHtmlAsync(int port, CancellationToken ct)
    {
        foreach (var host in new[] { "127.0.0.1", "[::1]" })
        {
            try
            {
                using var response = await Probe.GetAsync($"http://{host}:{port}/", HttpCompletionOption.ResponseHeadersRead, ct);
                return response.Content.Headers.ContentType?.MediaType is { } type
                    && type.Equals("text/html", StringComparison.OrdinalIgnoreCase);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
            }
        }
        return null;
    }

    private static async Task<bool> AcceptsAsync(int port, CancellationToken ct)
    {
        foreach (var address in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromMilliseconds(500));
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), timeout.Token);
                return true;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
            }
        }
        return false;
    }
}
