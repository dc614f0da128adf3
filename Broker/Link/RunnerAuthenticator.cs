using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Npgsql;
using SentryVibe.Data;

namespace SentryVibe.Broker.Link;

/// <summary>
/// What a link's bearer token proved. A per-runner token (<see cref="TokenId"/> set) speaks for one runner id only
/// (<see cref="RunnerId"/>; null for a token made before ids were bound, bound by its first Hello). The seed's shared
/// secret (<see cref="TokenId"/> null) may link as any id: the weaker mode (docs/runner-protocol.md).
/// </summary>
public sealed record RunnerCredential(Guid? TokenId, string? RunnerId)
{
    public static RunnerCredential SharedSecret { get; } = new(null, null);

    public bool IsSharedSecret => TokenId is null;
}

/// <summary>What Hello's identity check decided: a refusal, or the user the runner belongs to (null: no user exists yet).</summary>
public sealed record IdentityCheck(string? Refusal, Guid? OwnerId);

/// <summary>
/// Checks the runner's bearer token before the WebSocket upgrade: the seed's shared secret, or a per-runner token
/// created in the Web UI (stored as SHA-256, never in clear). Comparisons are constant-time.
/// </summary>
public sealed class RunnerAuthenticator(NpgsqlDataSource db, IOptionsMonitor<BrokerOptions> options, ILogger<RunnerAuthenticator> logger)
{
    private const int MaxTokenLength = 512;

    /// <summary>
    /// The stored form (<see cref="Secrets.HashOf"/>) of the bearer token a request presents, or null when it presents
    /// none; what a preview ticket is bound to (<see cref="Previews.PreviewTickets"/>).
    /// </summary>
    public static byte[]? PresentedTokenHash(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return null;
        var token = header["Bearer ".Length..].Trim();
        return token.Length is 0 or > MaxTokenLength ? null : Secrets.HashOf(token);
    }

    /// <summary>The credential, or null when the token is missing, wrong or revoked.</summary>
    public async Task<RunnerCredential?> AuthenticateAsync(HttpContext context)
    {
        // The stored form of every token, which also makes the shared secret's comparison constant-time in length.
        if (PresentedTokenHash(context) is not { } hash) return null;
        if (options.CurrentValue.SharedSecret is { Length: > 0 } secret
            && CryptographicOperations.FixedTimeEquals(hash, Secrets.HashOf(secret)))
        {
            return RunnerCredential.SharedSecret;
        }

        try
        {
            await using var command = db.CreateCommand(
                """UPDATE runner_tokens SET "LastUsedAt" = now() WHERE "Hash" = @hash AND "RevokedAt" IS NULL RETURNING "Hash", "Id", "RunnerId" """);
            command.Parameters.AddWithValue("hash", hash);
            await using var reader = await command.ExecuteReaderAsync(context.RequestAborted);
            if (!await reader.ReadAsync(context.RequestAborted)) return null;
            var stored = reader.GetFieldValue<byte[]>(0);
            if (!CryptographicOperations.FixedTimeEquals(stored, hash)) return null;
            return new RunnerCredential(reader.GetGuid(1), reader.IsDBNull(2) ? null : reader.GetString(2));
        }
        catch (NpgsqlException e)
        {
            // Without the database no per-runner token can be checked; the runner retries with backoff.
            logger.LogWarning(e, "Could not check a runner token: database unavailable");
            return null;
        }
    }

    /// <summary>
    /// Binds a token made before ids were bound to <paramref name="runnerId"/> (its first Hello), atomically: of two
    /// links racing with one such token, one id wins and the other is refused. Returns the id the token is bound to.
    /// </summary>
    public async Task<string?> BindTokenAsync(Guid tokenId, string runnerId, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            UPDATE runner_tokens SET "RunnerId" = COALESCE("RunnerId", @runner) WHERE "Id" = @id AND "RevokedAt" IS NULL RETURNING "RunnerId"
            """);
        command.Parameters.AddWithValue("id", tokenId);
        command.Parameters.AddWithValue("runner", runnerId);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>Of <paramref name="tokenIds"/>, those revoked (or deleted) since: their links must close.</summary>
    public async Task<IReadOnlyList<Guid>> RevokedAsync(IReadOnlyCollection<Guid> tokenIds, CancellationToken cancellationToken)
    {
        if (tokenIds.Count == 0) return [];
        await using var command = db.CreateCommand("""
            SELECT x.id FROM unnest(@ids) AS x(id)
            WHERE NOT EXISTS (SELECT 1 FROM runner_tokens t WHERE t."Id" = x.id AND t."RevokedAt" IS NULL)
            """);
        command.Parameters.AddWithValue("ids", tokenIds.ToArray());
        var revoked = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) revoked.Add(reader.GetGuid(0));
        return revoked;
    }

    /// <summary>
    /// Whether <paramref name="credential"/> may link as <paramref name="runnerId"/>: the refusal's text, or null and the
    /// user the runner belongs to (docs/accounts.md). A token's user is its OwnerId; the shared secret's, and that of a
    /// token from before accounts, is the owner (the AppHost's local runner is the owner's). A runner id whose row is
    /// another user's is refused before anything else happens: no binding, no takeover (docs/runner-protocol.md).
    /// </summary>
    public async Task<IdentityCheck> CheckIdentityAsync(RunnerCredential credential, string runnerId, CancellationToken cancellationToken)
    {
        var (user, runnerOwner) = await OwnersAsync(credential.TokenId, runnerId, cancellationToken);
        if (runnerOwner is { } taken && taken != user) return new IdentityCheck(OwnedByAnother(runnerId), null);
        if (credential.TokenId is not { } tokenId) return new IdentityCheck(null, user);
        // Asked again rather than taken from the upgrade: binds a legacy token, and sees a revocation since.
        var bound = await BindTokenAsync(tokenId, runnerId, cancellationToken);
        if (bound is null) return new IdentityCheck("This runner token has been revoked.", null);
        return string.Equals(bound, runnerId, StringComparison.Ordinal)
            ? new IdentityCheck(null, user)
            : new IdentityCheck(IdentityRefusal(runnerId, bound), null);
    }

    /// <summary>The user the credential stands for (null only while there is no user at all), and the runner row's user.</summary>
    private async Task<(Guid? User, Guid? RunnerOwner)> OwnersAsync(Guid? tokenId, string runnerId, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand($"""
            SELECT CASE WHEN @token IS NULL THEN ({OwnerSql})
                        ELSE (SELECT coalesce(t."OwnerId", ({OwnerSql})) FROM runner_tokens t WHERE t."Id" = @token) END,
                   (SELECT r."OwnerId" FROM runners r WHERE r."Id" = @runner)
            """);
        command.Parameters.Add(new NpgsqlParameter("token", NpgsqlTypes.NpgsqlDbType.Uuid) { Value = (object?)tokenId ?? DBNull.Value });
        command.Parameters.AddWithValue("runner", runnerId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.IsDBNull(0) ? null : reader.GetGuid(0), reader.IsDBNull(1) ? null : reader.GetGuid(1));
    }

    /// <summary>The owner's user id (docs/accounts.md): the first user with IsOwner.</summary>
    private const string OwnerSql = """SELECT u."Id" FROM users u WHERE u."IsOwner" ORDER BY u."CreatedAt" LIMIT 1""";

    public static string OwnedByAnother(string runnerId) =>
        $"Runner id '{runnerId}' belongs to another user; this token cannot link as it. Create a token for a runner id of your own in the web UI.";

    public static string IdentityRefusal(string asked, string bound) =>
        $"This runner token belongs to runner '{bound}', not '{asked}'. Run with --id {bound} (or RUNNER_ID={bound}), or create a token for '{asked}' in the web UI.";
}
