// Real parts for the link tests: broker and runner processes, in-process runners, a raw link, the database.
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nerdbank.Streams;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Link;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

[CollectionDefinition(Name)]
public sealed class LinkCollection : ICollectionFixture<SentryVibe.Testing.PostgresFixture>
{
    // One cluster, one test at a time: the fault tests time processes, and the machine has two cores.
    public const string Name = "link";
}

public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Configuration => AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";

    public static string BrokerDll => Path.Combine(RepoRoot, "Broker", "bin", Configuration, "net10.0", "SentryVibe.Broker.dll");
    public static string RunnerDll => Path.Combine(RepoRoot, "Runner", "bin", Configuration, "net10.0", "sentryvibe-runner.dll");
    public static string EmitterDll => Path.Combine(RepoRoot, "tests", "SentryVibe.Link.Emitter", "bin", Configuration, "net10.0", "SentryVibe.Link.Emitter.dll");

    public static string TempDirectory(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"sv-{prefix}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(path);
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SentryVibe.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("SentryVibe.sln not found above " + AppContext.BaseDirectory);
    }
}

public static class Database
{
    public const string SharedSecret = "test-shared-secret";

    public static async Task MigrateAsync(string connectionString)
    {
        var options = new DbContextOptionsBuilder<SentryVibeDb>()
            .UseNpgsql(connectionString)
            .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning))
            .Options;
        await using var db = new SentryVibeDb(options);
        await db.Database.MigrateAsync();
    }

    /// <summary>Unpooled: the fault tests restart Postgres under the pool's feet.</summary>
    public static string Unpooled(string connectionString) => connectionString + ";Pooling=false;Timeout=5";

    public static async Task<T?> ScalarAsync<T>(string connectionString, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(Unpooled(connectionString));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        var result = await command.ExecuteScalarAsync();
        return result is null or DBNull ? default : (T)result;
    }

    public static async Task ExecuteAsync(string connectionString, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(Unpooled(connectionString));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Queues a command the way Web does: a row, then NOTIFY with the runner id.</summary>
    public static async Task<Guid> QueueCommandAsync(string connectionString, string runnerId, RunnerCommand command, string? traceParent = null, Guid? id = null)
    {
        var commandId = id ?? Guid.NewGuid();
        await using var connection = new NpgsqlConnection(Unpooled(connectionString));
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO commands ("Id", "RunnerId", "ProjectId", "Type", "Payload", "Status", "Attempts", "TraceParent", "CreatedAt", "ExpiresAt")
            VALUES (@id, @runner, @project, @type, @payload::jsonb, 'queued', 0, @trace, clock_timestamp(), now() + interval '1 hour');
            SELECT pg_notify('sentryvibe_commands', @runner);
            """, connection);
        insert.Parameters.AddWithValue("id", commandId);
        insert.Parameters.AddWithValue("runner", runnerId);
        insert.Parameters.AddWithValue("project", command.ProjectId);
        var payload = System.Text.Json.JsonSerializer.Serialize(command, LinkProtocol.JsonOptions);
        insert.Parameters.AddWithValue("type", System.Text.Json.JsonDocument.Parse(payload).RootElement.GetProperty("type").GetString()!);
        insert.Parameters.AddWithValue("payload", payload);
        insert.Parameters.AddWithValue("trace", (object?)traceParent ?? DBNull.Value);
        await insert.ExecuteNonQueryAsync();
        return commandId;
    }

    public static Task<string?> CommandStatusAsync(string connectionString, Guid id) =>
        ScalarAsync<string>(connectionString, """SELECT "Status" FROM commands WHERE "Id" = @id""", ("id", id));

    public static Task<string?> RunnerStatusAsync(string connectionString, string runnerId) =>
        ScalarAsync<string>(connectionString, """SELECT "Status" FROM runners WHERE "Id" = @id""", ("id", runnerId));
}

/// <summary>A process whose output is kept for the failure message, killed (whole tree) on dispose.</summary>
public class ChildProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process? _process;

    protected ChildProcess(string name) => Name = name;

    public string Name { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process?.HasExited ?? true;
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;
    public int ProcessId => _process?.Id ?? 0;
    public event Action<string>? Line;

    protected void Start(string fileName, IEnumerable<string> arguments, IDictionary<string, string> environment, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        Start(psi);
    }

    /// <summary>Starts <paramref name="psi"/>, which must redirect standard output and error.</summary>
    protected void Start(ProcessStartInfo psi)
    {
        _process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {Name}.");
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
        Line?.Invoke(line);
    }

    /// <summary>SIGKILL, as a crash would.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

public sealed class BrokerProcess : ChildProcess
{
    private BrokerProcess(int port, string id) : base("broker " + id)
    {
        Port = port;
        Id = id;
    }

    public int Port { get; }
    public string Id { get; }
    public Uri LinkUri => new($"ws://127.0.0.1:{Port}{LinkProtocol.RunnerPath}");

    public static async Task<BrokerProcess> StartAsync(string connectionString, int? port = null, string? id = null, string? previewDomain = null,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var broker = new BrokerProcess(port ?? PostgresCluster.FreePort(), id ?? "broker-" + Guid.NewGuid().ToString("N")[..6]);
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__sentryvibe"] = connectionString,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{broker.Port}",
            ["RUNNER_SHARED_SECRET"] = Database.SharedSecret,
            ["Broker__Id"] = broker.Id,
            ["Broker__HelloTimeout"] = "00:00:03",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__SentryVibe"] = "Information",
            ["DOTNET_gcServer"] = "0",
            ["Broker__PreviewDomain"] = previewDomain ?? "",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) environment[key] = value;
        broker.Start("dotnet", [Paths.BrokerDll], environment);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            await SentryVibe.Testing.Eventually.WaitAsync(async () =>
            {
                if (broker.HasExited) throw new InvalidOperationException("The broker exited:\n" + broker.Output);
                return (await http.GetAsync($"http://127.0.0.1:{broker.Port}/alive")).StatusCode == HttpStatusCode.OK;
            }, TimeSpan.FromSeconds(30), $"the broker to listen on {broker.Port}", TimeSpan.FromMilliseconds(100));
        }
        catch
        {
            await broker.DisposeAsync(); // a broker that never became healthy must not outlive the test
            throw;
        }
        return broker;
    }
}

/// <summary>The emitter: a real runner process (real outbox, real link) that publishes a numbered stream of events.</summary>
public sealed class RunnerProcess : ChildProcess
{
    private long _emitted;

    private RunnerProcess(string id) : base("runner " + id)
    {
        Line += line =>
        {
            if (line.StartsWith("emitted ", StringComparison.Ordinal) && long.TryParse(line[8..], out var n)) Interlocked.Exchange(ref _emitted, n);
        };
    }

    public long Emitted => Interlocked.Read(ref _emitted);

    public static RunnerProcess Start(Uri broker, string runnerId, string home, long count = 0, int rate = 1000, Guid? project = null)
    {
        var runner = new RunnerProcess(runnerId);
        runner.Start("dotnet",
            [Paths.EmitterDll, "--broker", broker.ToString(), "--token", Database.SharedSecret, "--id", runnerId, "--home", home,
             "--count", count.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--rate", rate.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--project", (project ?? Guid.Empty).ToString()],
            new Dictionary<string, string> { ["DOTNET_gcServer"] = "0" });
        return runner;
    }
}

/// <summary>Records what the runner was asked to do.</summary>
public sealed class RecordingHandler(ICommandResultReporter results) : ICommandHandler
{
    private readonly List<CommandEnvelope> _executed = [];

    public bool ReportCompletion { get; set; }

    public IReadOnlyList<CommandEnvelope> Executed { get { lock (_executed) return [.. _executed]; } }

    public int CountOf(Guid id) { lock (_executed) return _executed.Count(e => e.Id == id); }

    public Task<CommandAck> HandleAsync(CommandEnvelope envelope, CancellationToken cancellationToken)
    {
        lock (_executed) _executed.Add(envelope);
        if (ReportCompletion) results.Report(new CommandResult(envelope.Id, Succeeded: true));
        return Task.FromResult(new CommandAck(envelope.Id, Accepted: true));
    }
}

/// <summary>The runner's link hosted in the test process, with a recording command handler.</summary>
public sealed class InProcessRunner : IAsyncDisposable
{
    private readonly IHost _host;

    private InProcessRunner(IHost host, string home)
    {
        _host = host;
        Home = home;
    }

    public string Home { get; }
    public RecordingHandler Handler => (RecordingHandler)_host.Services.GetRequiredService<ICommandHandler>();
    public EventOutbox Outbox => _host.Services.GetRequiredService<EventOutbox>();
    public IEventSink Events => _host.Services.GetRequiredService<IEventSink>();
    public LinkState State => _host.Services.GetRequiredService<LinkState>();
    public IServiceProvider Services => _host.Services;

    public static async Task<InProcessRunner> StartAsync(Uri broker, string runnerId, string? home = null, string token = Database.SharedSecret,
        Action<IServiceCollection>? configure = null)
    {
        home ??= Paths.TempDirectory("runner");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Runner:BrokerUrl"] = broker.ToString(),
            ["Runner:Token"] = token,
            ["Runner:Id"] = runnerId,
            ["Runner:Home"] = home,
        });
        builder.Services.AddSingleton<ICommandHandler, RecordingHandler>();
        builder.Services.AddRunnerLink();
        builder.Services.AddRunnerWork(builder.Configuration);
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        return new InProcessRunner(host, home);
    }

    public Task WaitConnectedAsync() =>
        SentryVibe.Testing.Eventually.WaitAsync(() => State.State == LinkStates.Connected, TimeSpan.FromSeconds(20), "the runner to link");

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try { await _host.StopAsync(timeout.Token); } catch (OperationCanceledException) { }
        _host.Dispose();
    }
}

/// <summary>A hand-driven link: the same transport as the runner, but the test decides what goes over it.</summary>
public sealed class RawLink : IAsyncDisposable
{
    private RawLink(ClientWebSocket socket, LinkSocket link, JsonRpc rpc)
    {
        Socket = socket;
        Link = link;
        Rpc = rpc;
        Broker = rpc.Attach<IBrokerService>();
    }

    public ClientWebSocket Socket { get; }
    public LinkSocket Link { get; }
    public JsonRpc Rpc { get; }
    public IBrokerService Broker { get; }

    /// <summary>The status code the broker answered the upgrade with (101 when it upgraded).</summary>
    public static async Task<HttpStatusCode> TryUpgradeAsync(Uri uri, string? token)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (token is not null) socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        try
        {
            await socket.ConnectAsync(uri, CancellationToken.None);
            socket.Abort();
            return HttpStatusCode.SwitchingProtocols;
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }
    }

    public static async Task<ClientWebSocket> ConnectSocketAsync(Uri uri, string token = Database.SharedSecret)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        await socket.ConnectAsync(uri, CancellationToken.None);
        return socket;
    }

    /// <param name="link">The link's end of the transport, when the test needs its own (one that counts heartbeats).</param>
    public static async Task<RawLink> ConnectAsync(Uri uri, string token = Database.SharedSecret, IRunnerService? runner = null,
        Func<WebSocket, LinkSocket>? link = null)
    {
        var socket = await ConnectSocketAsync(uri, token);
        var handler = link?.Invoke(socket) ?? new LinkSocket(socket);
        var rpc = LinkTransport.CreateRpc(handler);
        rpc.AddLocalRpcTarget<IRunnerService>(runner ?? new NullRunnerService(), null);
        var raw = new RawLink(socket, handler, rpc);
        rpc.StartListening();
        return raw;
    }

    public Task<HelloReply> HelloAsync(string runnerId, int version = LinkProtocol.Version) =>
        Broker.HelloAsync(new RunnerHello(version, runnerId, "test"), CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        Rpc.Dispose();
        await Link.DisposeAsync();
        Socket.Dispose();
    }

    /// <summary>A runner's end of the link that counts the heartbeats it is answered with.</summary>
    public sealed class CountingLinkSocket(WebSocket socket) : LinkSocket(socket)
    {
        private int _answers;

        public int Answers => Volatile.Read(ref _answers);

        protected override ValueTask OnHeartbeatAsync()
        {
            Interlocked.Increment(ref _answers);
            return default;
        }
    }

    private sealed class NullRunnerService : IRunnerService
    {
        public Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken) =>
            Task.FromResult(new CommandAck(envelope.Id, true));
        public Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken) =>
            Task.FromResult(new PreviewChannelAck(false, "none"));
        public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) =>
            Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));
    }
}

/// <summary>A database with the schema and one broker process on it, shared by the tests of a class.</summary>
public sealed class BrokerEnvironment(SentryVibe.Testing.PostgresFixture postgres) : IAsyncLifetime
{
    public string Db { get; private set; } = "";
    public BrokerProcess Broker { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(Db);
        Broker = await BrokerProcess.StartAsync(Db);
    }

    public async Task DisposeAsync()
    {
        if (Broker is not null) await Broker.DisposeAsync();
    }
}

/// <summary>A runner's dev servers as the preview relay asks for them: these projects' servers listen on one port.</summary>
public sealed class DevServersAt(int port, params Guid[] projects) : IPreviewTargets
{
    public int? GetDevServerPort(Guid projectId) => projects.Contains(projectId) ? port : null;
}

/// <summary>
/// A load balancer in front of several replicas, as Railway's router is: each new TCP connection goes to the next
/// backend in turn, and its bytes are copied both ways until either side closes.
/// </summary>
public sealed class RoundRobinBalancer : IAsyncDisposable
{
    private readonly System.Net.Sockets.TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int[] _backends;
    private readonly List<System.Net.Sockets.TcpClient> _open = [];
    private readonly Task _accepting;
    private int _next;

    public RoundRobinBalancer(params int[] backends)
    {
        _backends = backends;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections passed to each backend so far, in the order given.</summary>
    public int[] Passed { get; private set; } = [];

    private async Task AcceptAsync()
    {
        Passed = new int[_backends.Length];
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync();
                var index = _next++ % _backends.Length;
                Passed[index]++;
                var backend = new System.Net.Sockets.TcpClient();
                await backend.ConnectAsync(IPAddress.Loopback, _backends[index]);
                lock (_open) _open.AddRange([client, backend]);
                _ = PipeAsync(client, backend);
                _ = PipeAsync(backend, client);
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task PipeAsync(System.Net.Sockets.TcpClient from, System.Net.Sockets.TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
            to.Client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            to.Client.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _accepting;
        lock (_open)
        {
            foreach (var client in _open) client.Dispose();
        }
    }
}
