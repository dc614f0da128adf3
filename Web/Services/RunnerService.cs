// Runners as the broker records them, and the tokens they connect with.
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Web.Services;

public sealed class RunnerService(SentryVibeDb db, TimeProvider time, ILogger<RunnerService> logger)
{
    public const string TokenPrefix = "svr_";
    public const int ShownPrefixLength = 12;
    public const int MaxTokenNameLength = 100;

    /// <summary>Online ones first, then by when they were last seen.</summary>
    public async Task<IReadOnlyList<RunnerView>> ListAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var rows = await db.Runners.AsNoTracking().ToListAsync(ct);
        return rows
            .Select(r => new RunnerView(r.Id, r.Name,
                ProjectService.IsOnline(r, now) ? RunnerStatuses.Online : RunnerStatuses.Offline,
                r.LastSeenAt, r.Version, r.Hostname, r.Agents, r.PreviewProvider))
            .OrderBy(r => r.Status == RunnerStatuses.Online ? 0 : 1)
            .ThenByDescending(r => r.LastSeenAt ?? DateTimeOffset.MinValue)
            .ThenBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
    }

    public async Task<IReadOnlyList<RunnerTokenView>> ListTokensAsync(CancellationToken ct)
    {
        var rows = await db.RunnerTokens.AsNoTracking().OrderByDescending(t => t.CreatedAt).ToListAsync(ct);
        return rows.Select(t => new RunnerTokenView(t.Id, t.Name, t.Prefix, t.CreatedAt, t.RevokedAt, t.LastUsedAt)).ToList();
    }

    /// <summary>Creates a token: 32 random bytes, base64url, "svr_" in front. Only its SHA-256 is stored.</summary>
    public async Task<ServiceResult<CreatedRunnerToken>> CreateTokenAsync(CreateRunnerTokenRequest request, CancellationToken ct)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            return new ServiceResult<CreatedRunnerToken>.Invalid(new Dictionary<string, string[]> { ["name"] = ["A name is required (e.g. the machine it is for)."] });
        }
        if (name.Length > MaxTokenNameLength)
        {
            return new ServiceResult<CreatedRunnerToken>.Invalid(new Dictionary<string, string[]> { ["name"] = [$"The name is longer than {MaxTokenNameLength} characters."] });
        }

        var token = TokenPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var row = new RunnerToken
        {
            Id = Guid.CreateVersion7(),
            Name = name,
            Hash = RunnerToken.HashOf(token),
            Prefix = token[..ShownPrefixLength],
            CreatedAt = time.GetUtcNow(),
        };
        db.RunnerTokens.Add(row);
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Runner token {TokenId} ({Prefix}…) created for {Name}", row.Id, row.Prefix, row.Name);
        return new CreatedRunnerToken(row.Id, row.Name, token, row.Prefix, row.CreatedAt);
    }

    /// <summary>Revokes a token; the broker refuses it from then on. Revoking twice is harmless.</summary>
    public async Task<bool> RevokeTokenAsync(Guid id, CancellationToken ct)
    {
        var row = await db.RunnerTokens.FirstOrDefaultAsync(t => t.Id == id, ct);
        if (row is null) return false;
        if (row.RevokedAt is null)
        {
            row.RevokedAt = time.GetUtcNow();
            await db.SaveChangesAsync(ct);
            logger.LogInformation("Runner token {TokenId} ({Prefix}…) revoked", row.Id, row.Prefix);
        }
        return true;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
