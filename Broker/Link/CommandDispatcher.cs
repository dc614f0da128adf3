using Npgsql;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Listens on <c>sentryvibe_commands</c> (one dedicated connection, reconnected when it drops) and wakes the delivery
/// loop of the named runner when this replica holds its socket. After a reconnect, and every half minute as a safety
/// net, it asks the database which held runners have anything pending. The same connection listens for revoked runner
/// tokens and closes the links made with them (with the same safety net).
/// </summary>
public sealed class CommandDispatcher(
    NpgsqlDataSource dataSource,
    RunnerConnectionRegistry registry,
    CommandStore commands,
    RunnerAuthenticator authenticator,
    ILogger<CommandDispatcher> logger) : BackgroundService
{
    private static readonly TimeSpan SafetyPoll = TimeSpan.FromSeconds(30);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new PostgresListener(dataSource, logger, SentryVibeDb.CommandsChannel, SentryVibeDb.RevokedTokensChannel)
        {
            OnNotification = (channel, payload) =>
            {
                if (channel == SentryVibeDb.RevokedTokensChannel)
                {
                    if (Guid.TryParse(payload, out var tokenId)) CloseLinksOf([tokenId]);
                }
                else
                {
                    registry.Get(payload)?.WakeDelivery();
                }
            },
            // Notifications sent while we were not listening are gone: look for work directly, then every half minute.
            OnConnected = CatchUpAsync,
            OnIdle = CatchUpAsync,
            IdleCheck = SafetyPoll,
        }.RunAsync(stoppingToken);

    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        await WakePendingAsync(cancellationToken);
        await CloseRevokedAsync(cancellationToken);
    }

    private async Task CloseRevokedAsync(CancellationToken cancellationToken)
    {
        var held = registry.All.Select(c => c.Credential.TokenId).OfType<Guid>().Distinct().ToList();
        var revoked = await authenticator.RevokedAsync(held, cancellationToken);
        if (revoked.Count > 0) CloseLinksOf(revoked);
    }

    private void CloseLinksOf(IReadOnlyCollection<Guid> tokenIds)
    {
        foreach (var connection in registry.All.Where(c => c.Credential.TokenId is { } id && tokenIds.Contains(id)))
        {
            logger.LogInformation("Closing the link of runner {Runner}: its token {TokenId} was revoked", connection.RunnerId, connection.Credential.TokenId);
            _ = connection.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.TokenRevoked);
        }
    }

    private async Task WakePendingAsync(CancellationToken cancellationToken)
    {
        var held = registry.All.Where(c => c.IsReady && c.RunnerId is not null).Select(c => c.RunnerId!).ToList();
        foreach (var runnerId in await commands.RunnersWithPendingAsync(held, cancellationToken))
        {
            registry.Get(runnerId)?.WakeDelivery();
        }
    }
}
