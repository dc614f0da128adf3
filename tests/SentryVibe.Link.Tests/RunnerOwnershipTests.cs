// Runners belong to users (docs/accounts.md): a Hello links a runner as its credential's user, and no credential links a
// runner id another user owns. Real broker process, real Postgres, users made as Identity stores them.
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class RunnerOwnershipTests(BrokerEnvironment environment) : IClassFixture<BrokerEnvironment>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;
    private readonly BrokerProcess _broker = environment.Broker;

    [Fact]
    public async Task A_runner_token_of_one_user_cannot_link_a_runner_id_another_user_owns_and_nothing_changes()
    {
        var (alice, bob) = (await UserAsync("alice"), await UserAsync("bob"));
        var runnerId = "alice-box-" + Suffix();
        var aliceToken = await TokenAsync(alice, runnerId);
        await using var honest = await RawLink.ConnectAsync(_broker.LinkUri, aliceToken);
        await honest.HelloAsync(runnerId);
        var before = await RowAsync(runnerId);
        Assert.Equal(alice, before.OwnerId);

        // Bob's token bound to Alice's runner id (made before Web checked ids, or racing its check).
        var bobToken = await TokenAsync(bob, runnerId);
        await using var rogue = await RawLink.ConnectAsync(_broker.LinkUri, bobToken);
        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => rogue.Broker.HelloAsync(
            new RunnerHello(LinkProtocol.Version, runnerId, "rogue-9.9") { Hostname = "rogue-box", Name = "rogue" }, CancellationToken.None));

        Assert.Equal(LinkErrorCodes.IdentityRefused, error.ErrorCode);
        Assert.Contains("belongs to another user", error.Message);
        await Eventually.WaitAsync(() => rogue.Socket.CloseStatus is not null, Wait, "the broker to close the rogue's link");
        Assert.Equal(LinkCloseReasons.IdentityRefused, rogue.Socket.CloseStatusDescription);
        Assert.Equal(before, await RowAsync(runnerId));

        // Alice's link is still hers and still answered.
        await honest.Broker.HeartbeatAsync(new Heartbeat(DateTimeOffset.UtcNow), CancellationToken.None);
    }

    [Fact]
    public async Task A_linked_runner_row_gets_its_tokens_user()
    {
        var bob = await UserAsync("bob");
        var runnerId = "bob-box-" + Suffix();
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri, await TokenAsync(bob, runnerId));

        await link.HelloAsync(runnerId);

        var row = await RowAsync(runnerId);
        Assert.Equal(bob, row.OwnerId);
        Assert.Equal(RunnerStatuses.Online, row.Status);
    }

    [Fact]
    public async Task The_shared_secret_links_the_owners_runners_and_never_another_users()
    {
        var owner = await OwnerAsync();
        var carol = await UserAsync("carol");
        var local = "local-" + Suffix();
        await using (var link = await RawLink.ConnectAsync(_broker.LinkUri))
        {
            await link.HelloAsync(local);
        }
        Assert.Equal(owner, (await RowAsync(local)).OwnerId);

        var carols = "carol-box-" + Suffix();
        await using (var link = await RawLink.ConnectAsync(_broker.LinkUri, await TokenAsync(carol, carols)))
        {
            await link.HelloAsync(carols);
        }
        // The broker marks a closed link's runner offline on its own time; compare against the settled row.
        var before = await Eventually.WaitAsync(async () => await RowAsync(carols) is { Status: RunnerStatuses.Offline } row ? row : null,
            Wait, "the broker to mark Carol's closed runner offline");

        await using var secret = await RawLink.ConnectAsync(_broker.LinkUri);
        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => secret.HelloAsync(carols));
        Assert.Equal(LinkErrorCodes.IdentityRefused, error.ErrorCode);
        Assert.Equal(before, await RowAsync(carols));
    }

    [Fact]
    public async Task A_token_from_before_accounts_links_as_the_owners_and_stays_bound_to_nothing_of_another_user()
    {
        var owner = await OwnerAsync();
        var dave = await UserAsync("dave");
        var daves = "dave-box-" + Suffix();
        await using (var link = await RawLink.ConnectAsync(_broker.LinkUri, await TokenAsync(dave, daves)))
        {
            await link.HelloAsync(daves);
        }

        // A legacy token (no runner id, no user) naming Dave's runner: refused, and not bound to it.
        var (legacyId, legacy) = await Tokens.CreateAsync(_db, runnerId: null);
        await using (var rogue = await RawLink.ConnectAsync(_broker.LinkUri, legacy))
        {
            var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => rogue.HelloAsync(daves));
            Assert.Equal(LinkErrorCodes.IdentityRefused, error.ErrorCode);
        }
        Assert.Null(await Database.ScalarAsync<string>(_db, """SELECT "RunnerId" FROM runner_tokens WHERE "Id" = @id""", ("id", legacyId)));

        var mine = "legacy-" + Suffix();
        await using var honest = await RawLink.ConnectAsync(_broker.LinkUri, legacy);
        await honest.HelloAsync(mine);
        Assert.Equal(owner, (await RowAsync(mine)).OwnerId);
    }

    // ---- helpers ----

    /// <summary>What a Hello writes (LastSeenAt left out: liveness refreshes it on its own).</summary>
    private sealed record RunnerRow(Guid? OwnerId, string Status, string? BrokerId, string? Version, string? Hostname, string? Name, long CommittedSeq);

    private static string Suffix() => Guid.NewGuid().ToString("N")[..6];

    private SentryVibeDb Db() => new(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(Database.Unpooled(_db)).Options);

    private async Task<Guid> UserAsync(string name, bool owner = false)
    {
        await using var db = Db();
        var email = $"{name}-{Suffix()}@example.test";
        var user = new User
        {
            Id = Guid.CreateVersion7(),
            UserName = email,
            NormalizedUserName = email.ToUpperInvariant(),
            Email = email,
            NormalizedEmail = email.ToUpperInvariant(),
            DisplayName = name,
            IsOwner = owner,
            CreatedAt = DateTimeOffset.UtcNow,
            SecurityStamp = Guid.NewGuid().ToString(),
        };
        db.Users.Add(user);
        await db.SaveChangesAsync();
        return user.Id;
    }

    /// <summary>The instance's owner (one per database: the first start of Web makes it).</summary>
    private async Task<Guid> OwnerAsync()
    {
        await using (var db = Db())
        {
            if (await db.Users.Where(u => u.IsOwner).Select(u => (Guid?)u.Id).FirstOrDefaultAsync() is { } existing) return existing;
        }
        return await UserAsync("owner", owner: true);
    }

    /// <summary>A runner token of <paramref name="user"/> bound to <paramref name="runnerId"/>, as Web makes it (SHA-256 stored).</summary>
    private async Task<string> TokenAsync(Guid user, string runnerId)
    {
        var token = "svr_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        await Database.ExecuteAsync(_db, """
            INSERT INTO runner_tokens ("Id", "OwnerId", "Name", "Hash", "Prefix", "CreatedAt", "RunnerId") VALUES (@id, @owner, @name, @hash, 'svr_', now(), @runner)
            """, ("id", Guid.NewGuid()), ("owner", user), ("name", runnerId), ("hash", SHA256.HashData(Encoding.UTF8.GetBytes(token))), ("runner", runnerId));
        return token;
    }

    private async Task<RunnerRow> RowAsync(string runnerId)
    {
        await using var db = Db();
        var r = await db.Runners.AsNoTracking().SingleAsync(r => r.Id == runnerId);
        return new RunnerRow(r.OwnerId, r.Status, r.BrokerId, r.Version, r.Hostname, r.Name, r.CommittedSeq);
    }
}
