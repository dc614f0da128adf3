// A refused Hello's link closes after its JSON-RPC error reply is written, not after a fixed delay: a broker whose
// refusal replies are slow to flush (Broker:RefusalReplyDelay, longer than the 200 ms the link used to wait) still
// gives the runner its error first and the close frame with its reason after it.
using System.Net.WebSockets;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class RefusalReplyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private string _db = "";
    private BrokerProcess _broker = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db, settings: new Dictionary<string, string> { ["Broker__RefusalReplyDelay"] = "00:00:01" });
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_hello_over_limits_gets_its_error_before_the_close_even_when_the_reply_is_slow_to_write()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        var hello = new RunnerHello(LinkProtocol.Version, "slow-limits", "1.0") with { Name = new string('x', 100_000) };

        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => link.Broker.HelloAsync(hello, CancellationToken.None));

        Assert.Equal(LinkErrorCodes.InvalidRequest, error.ErrorCode);
        Assert.Contains("Hello field Name", error.Message);
        await AssertClosedAsync(link, LinkCloseReasons.HelloOverLimits);
    }

    [Fact]
    public async Task A_protocol_mismatch_gets_its_error_before_the_close_even_when_the_reply_is_slow_to_write()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);

        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => link.HelloAsync("slow-version", LinkProtocol.Version + 1));

        Assert.Equal(LinkErrorCodes.ProtocolMismatch, error.ErrorCode);
        await AssertClosedAsync(link, LinkCloseReasons.ProtocolMismatch);
    }

    [Fact]
    public async Task A_refused_identity_gets_its_error_before_the_close_even_when_the_reply_is_slow_to_write()
    {
        var (_, token) = await Tokens.CreateAsync(_db, "slow-owner");
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri, token);

        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => link.HelloAsync("slow-someone-else"));

        Assert.Equal(LinkErrorCodes.IdentityRefused, error.ErrorCode);
        await AssertClosedAsync(link, LinkCloseReasons.IdentityRefused);
        Assert.Equal(0L, await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM runners WHERE "Id" LIKE 'slow-%'"""));
    }

    private static async Task AssertClosedAsync(RawLink link, string reason)
    {
        await Eventually.WaitAsync(() => link.Socket.CloseStatus is not null, Wait, "the broker to close the refused link");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, link.Socket.CloseStatus);
        Assert.StartsWith(reason, link.Socket.CloseStatusDescription);
    }
}
