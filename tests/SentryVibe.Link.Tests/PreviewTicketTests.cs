// The preview socket's ticket played from the attacker's side (docs/runner-protocol.md): another runner's token, no
// token, a made-up ticket, a spent one, one the broker stopped waiting for. Each gets the same bare 404 and spends nothing.
using System.Collections.Concurrent;
using System.Net;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class PreviewTicketTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private PreviewBroker _env = null!;

    public async Task InitializeAsync() => _env = await PreviewBroker.StartAsync(postgres);

    public async Task DisposeAsync() => await _env.DisposeAsync();

    [Fact]
    public async Task Only_the_asking_link_s_token_redeems_its_ticket_once_and_every_other_try_is_the_same_404()
    {
        var tries = new ConcurrentDictionary<string, HttpStatusCode>();
        var runner = new TicketRunner(async ticket =>
        {
            var uri = PreviewSocket(ticket);
            // The attacker's tries come first: none of them may spend the ticket.
            tries["another runner's token"] = await RawLink.TryUpgradeAsync(uri, _env.AttackerToken);
            tries["no token"] = await RawLink.TryUpgradeAsync(uri, null);
            tries["made-up ticket"] = await RawLink.TryUpgradeAsync(PreviewSocket(Previews.MadeUpTicket()), _env.VictimToken);
            tries["the link's token"] = await RawLink.TryUpgradeAsync(uri, _env.VictimToken);
            tries["reused"] = await RawLink.TryUpgradeAsync(uri, _env.VictimToken);
            return new PreviewChannelAck(true);
        });
        await using var link = await LinkAsVictimAsync(runner);
        var preview = await AddProjectAsync("victim");

        using var response = await GetAsync(preview);

        Assert.Single(runner.Tickets);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, tries["the link's token"]);
        foreach (var refused in new[] { "another runner's token", "no token", "made-up ticket", "reused" })
        {
            Assert.True(tries[refused] == HttpStatusCode.NotFound, $"{refused}: {tries[refused]}");
        }
    }

    [Fact]
    public async Task A_ticket_the_runner_refused_is_withdrawn_and_its_socket_is_the_same_404()
    {
        var runner = new TicketRunner(_ => Task.FromResult(new PreviewChannelAck(false, "no dev server")));
        await using var link = await LinkAsVictimAsync(runner);
        var preview = await AddProjectAsync("victim");

        using var response = await GetAsync(preview);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(PreviewSocket(Assert.Single(runner.Tickets)), _env.VictimToken));
    }

    [Fact]
    public async Task A_ticket_past_its_fifteen_seconds_is_the_same_404()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The runner sits on the call: the broker gives up when the ticket expires and answers the browser 502.
        var runner = new TicketRunner(async _ =>
        {
            await release.Task;
            return new PreviewChannelAck(false, "too late");
        });
        await using var link = await LinkAsVictimAsync(runner);
        var preview = await AddProjectAsync("victim");

        using var response = await GetAsync(preview).WaitAsync(Wait);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(PreviewSocket(Assert.Single(runner.Tickets)), _env.VictimToken));
        release.TrySetResult();
    }

    [Fact]
    public async Task Anything_but_a_ticketed_upgrade_is_a_bare_404_with_no_hint()
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", _env.VictimToken);
        using var plain = await http.GetAsync($"http://127.0.0.1:{_env.Broker.Port}/runner/preview/{Previews.MadeUpTicket()}");

        Assert.Equal(HttpStatusCode.NotFound, plain.StatusCode);
        Assert.Equal("", await plain.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(PreviewSocket(Previews.MadeUpTicket()), null));
    }

    private Uri PreviewSocket(string ticket) => LinkProtocol.PreviewSocketUri(_env.Broker.LinkUri, ticket);


    private async Task<RawLink> LinkAsVictimAsync(TicketRunner runner)
    {
        var link = await RawLink.ConnectAsync(_env.Broker.LinkUri, _env.VictimToken, runner);
        await link.HelloAsync("victim");
        return link;
    }

    private Task<HttpResponseMessage> GetAsync(string preview) => _env.GetAsync(preview, Wait);

    private async Task<string> AddProjectAsync(string runnerId) => (await _env.AddRunningAsync(runnerId)).Preview;
}
