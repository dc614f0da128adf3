using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using SentryVibe.Protocol;
using SentryVibe.Runner.Link;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>Each kind of bad input ends (at most) its own link; a well-behaved runner on the same broker keeps working.</summary>
[Collection(LinkCollection.Name)]
public sealed class BadInputTests(BrokerEnvironment environment) : IClassFixture<BrokerEnvironment>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;
    private readonly BrokerProcess _broker = environment.Broker;
    private InProcessRunner _bystander = null!;

    public async Task InitializeAsync()
    {
        _bystander = await InProcessRunner.StartAsync(_broker.LinkUri, "bystander");
        await _bystander.WaitConnectedAsync();
    }

    public async Task DisposeAsync() => await _bystander.DisposeAsync();

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-token")]
    [InlineData("")]
    public async Task A_missing_or_wrong_token_is_refused_with_401_before_the_upgrade(string? token)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await RawLink.TryUpgradeAsync(_broker.LinkUri, token));
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task A_per_runner_token_is_accepted_until_it_is_revoked()
    {
        var token = "svr_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var tokenId = Guid.NewGuid();
        await Database.ExecuteAsync(_db, """
            INSERT INTO runner_tokens ("Id", "Name", "Hash", "Prefix", "CreatedAt") VALUES (@id, 'laptop', @hash, 'svr_', now())
            """, ("id", tokenId), ("hash", SHA256.HashData(Encoding.UTF8.GetBytes(token))));

        Assert.Equal(HttpStatusCode.SwitchingProtocols, await RawLink.TryUpgradeAsync(_broker.LinkUri, token));
        Assert.NotNull(await Database.ScalarAsync<DateTime?>(_db, """SELECT "LastUsedAt" FROM runner_tokens WHERE "Id" = @id""", ("id", tokenId)));

        await Database.ExecuteAsync(_db, """UPDATE runner_tokens SET "RevokedAt" = now() WHERE "Id" = @id""", ("id", tokenId));
        Assert.Equal(HttpStatusCode.Unauthorized, await RawLink.TryUpgradeAsync(_broker.LinkUri, token));
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task Garbage_frames_close_that_link_only()
    {
        using var socket = await RawLink.ConnectSocketAsync(_broker.LinkUri);
        var garbage = RandomNumberGenerator.GetBytes(4096);
        await socket.SendAsync(garbage, WebSocketMessageType.Binary, true, CancellationToken.None);

        var close = await ReceiveCloseAsync(socket);
        Assert.True(close is WebSocketCloseStatus.ProtocolError or WebSocketCloseStatus.PolicyViolation, $"closed with {close}");
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task A_16_MiB_message_closes_that_link_with_message_too_big()
    {
        using var socket = await RawLink.ConnectSocketAsync(_broker.LinkUri);
        var receive = ReceiveCloseAsync(socket);
        var chunk = new byte[1024 * 1024];
        try
        {
            for (var i = 0; i < 16; i++)
            {
                await socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: i == 15, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The broker may stop reading (and close) before all 16 MiB are out.
        }

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await receive);
        Assert.Contains("size limit", socket.CloseStatusDescription);
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task An_unknown_method_gets_a_json_rpc_error_and_the_link_stays_up()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        await link.HelloAsync("curious-runner");

        await Assert.ThrowsAsync<RemoteMethodNotFoundException>(() => link.Rpc.InvokeWithCancellationAsync("DeleteEverythingAsync", [42], CancellationToken.None));

        var beat = await link.Broker.HeartbeatAsync(new Heartbeat(DateTimeOffset.UtcNow), CancellationToken.None);
        Assert.NotNull(beat);
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task Calls_before_hello_are_refused()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() =>
            link.Broker.PublishEventsAsync(new EventBatch([new RunnerEvent(1, null, DateTimeOffset.UtcNow, new BuildLog("x"))]), CancellationToken.None));
        Assert.Equal(LinkErrorCodes.HelloRequired, error.ErrorCode);
    }

    [Fact]
    public async Task A_wrong_protocol_version_is_refused_with_a_clear_reason_and_the_link_closed()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);

        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => link.HelloAsync("old-runner", version: LinkProtocol.Version + 98));

        Assert.Equal(LinkErrorCodes.ProtocolMismatch, error.ErrorCode);
        Assert.Contains("protocol version", error.Message);
        await Eventually.WaitAsync(() => link.Socket.CloseStatus is not null, Wait, "the broker to close the link");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, link.Socket.CloseStatus);
        Assert.Contains("protocol version", link.Socket.CloseStatusDescription);
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task Flooding_publish_calls_are_rate_limited_without_closing_the_link()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        await link.HelloAsync("noisy-runner");

        var calls = Enumerable.Range(0, 400).Select(i => link.Broker.PublishEventsAsync(new EventBatch([]), CancellationToken.None));
        var outcomes = await Task.WhenAll(calls.Select(async c =>
        {
            try { await c; return 0; }
            catch (RemoteInvocationException e) { return e.ErrorCode; }
        }));

        Assert.Contains(LinkErrorCodes.RateLimited, outcomes);
        Assert.Contains(0, outcomes);
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task A_rate_limited_link_gets_its_allowance_back_as_time_passes()
    {
        // The buckets refill when used, by the time since they last were (no timer per link): a refill that never came
        // would leave this link refused for good.
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        await link.HelloAsync("eager-runner");

        var refused = false;
        for (var i = 0; i < 40 && !refused; i++)
        {
            refused = !await HeartbeatAnsweredAsync(link);
        }
        Assert.True(refused, "40 heartbeats in a row were all answered; the limit never applied");

        await Eventually.WaitAsync(() => HeartbeatAnsweredAsync(link), Wait, "a heartbeat to be answered again", TimeSpan.FromMilliseconds(200));
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task Heartbeat_messages_are_answered_only_after_the_hello_and_a_flood_only_within_the_allowance()
    {
        // The empty messages runners heartbeat with never reach JSON-RPC, so they are counted apart: one before the Hello
        // is not answered, and a flood is answered no faster than heartbeat calls would be. The link stays up either way.
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri, link: socket => new RawLink.CountingLinkSocket(socket));
        var counting = (RawLink.CountingLinkSocket)link.Link;
        await counting.SendHeartbeatAsync();
        var reply = await link.HelloAsync("drumming-runner");
        Assert.True(reply.AnswersEmptyHeartbeats);
        // The broker reads a link's messages in order and answers a heartbeat before it reads on, so an answer to the
        // early heartbeat would have arrived before the Hello's reply.
        Assert.Equal(0, counting.Answers);

        for (var i = 0; i < 200; i++) await counting.SendHeartbeatAsync();
        await Assert.ThrowsAsync<RemoteMethodNotFoundException>(() => link.Rpc.InvokeWithCancellationAsync("AfterTheFloodAsync", [], CancellationToken.None));
        var answered = counting.Answers;
        Assert.InRange(answered, 1, 20); // 10 at once, and 2 a second after (BrokerOptions.HeartbeatsPerSecond)

        Assert.Equal(WebSocketState.Open, link.Socket.State);
        await Eventually.WaitAsync(async () =>
        {
            await counting.SendHeartbeatAsync();
            await Record.ExceptionAsync(() => link.Rpc.InvokeWithCancellationAsync("AfterTheFloodAsync", [], CancellationToken.None));
            return counting.Answers > answered;
        }, Wait, "a heartbeat to be answered again", TimeSpan.FromMilliseconds(200));
        await AssertBystanderWorksAsync();
    }

    private static async Task<bool> HeartbeatAnsweredAsync(RawLink link)
    {
        try
        {
            await link.Broker.HeartbeatAsync(new Heartbeat(DateTimeOffset.UtcNow), CancellationToken.None);
            return true;
        }
        catch (RemoteInvocationException e) when (e.ErrorCode == LinkErrorCodes.RateLimited)
        {
            return false;
        }
    }

    private async Task AssertBystanderWorksAsync()
    {
        Assert.Equal(LinkStates.Connected, _bystander.State.State);
        var id = await Database.QueueCommandAsync(_db, "bystander", new StartDevServer(Guid.NewGuid()));
        await Eventually.WaitAsync(() => _bystander.Handler.CountOf(id) == 1, Wait, "the bystander to run a command");
        var target = _bystander.Outbox.LastSeq + 1;
        await _bystander.Events.PublishAsync(null, new BuildLog("still here"));
        await Eventually.WaitAsync(() => _bystander.Outbox.AckedSeq >= target, Wait, "the bystander's event to be acked");
    }

    private static async Task<WebSocketCloseStatus?> ReceiveCloseAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(Wait);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close) return result.CloseStatus;
            }
        }
        catch (WebSocketException)
        {
            return socket.CloseStatus ?? WebSocketCloseStatus.Empty;
        }
    }
}
