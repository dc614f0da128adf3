using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Checks the runner's bearer token before the WebSocket upgrade: the seed's shared secret, or a per-runner token
/// created in the Web UI (stored as SHA-256, never in clear). Comparisons are constant-time.
/// </summary>
public sealed class RunnerAuthenticator(NpgsqlDataSource db, IOptionsMonitor<BrokerOptions> options, ILogger<RunnerAuthenticator> logger)
{
    private const int MaxTokenLength = 512;

    public async Task<bool> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var token = header["Bearer ".Length..].Trim();
        if (token.Length is 0 or > MaxTokenLength) return false;

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        if (options.CurrentValue.SharedSecret is { Length: > 0 } secret
            && CryptographicOperations.FixedTimeEquals(hash, SHA256.HashData(Encoding.UTF8.GetBytes(secret))))
        {
            return true;
        }

        try
        {
            await using var command = db.CreateCommand(
                """UPDATE runner_tokens SET "LastUsedAt" = now() WHERE "Hash" = @hash AND "RevokedAt" IS NULL RETURNING "Hash" """);
            command.Parameters.AddWithValue("hash", hash);
            var stored = await command.ExecuteScalarAsync(context.RequestAborted) as byte[];
            return stored is not null && CryptographicOperations.FixedTimeEquals(stored, hash);
        }
        catch (NpgsqlException e)
        {
            // Without the database no per-runner token can be checked; the runner retries with backoff.
            logger.LogWarning(e, "Could not check a runner token: database unavailable");
            return false;
        }
    }
}
