// A user's runners as the broker records them, and the tokens they connect with. Every call takes the caller's user id:
// another user's runner or token answers exactly like a missing one (docs/security.md).
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Services;

public sealed class RunnerDirectory(
    SentryVibeDb db,
    IOptions<SentryVibeOptions> options,
    OwnerAccount owner,
    TimeProvider time,
    ILogger<RunnerDirectory> logger)
{
    public const string TokenPrefix = "svr_";
    public const int ShownPrefixLength = 12;
    public const int MaxTokenNameLength = 100;
    public const string RunnerIdTaken = "That runner id is taken; choose another.";

    /// <summary>The user's runners: online ones first, then by when they were last seen.</summary>
    public async Task<IReadOnlyList<RunnerView>> ListAsync(Guid userId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var rows = await db.Runners.AsNoTracking().Where(r => r.OwnerId == userId).ToListAsync(ct);
        return rows
            .Select(r => new RunnerView(r.Id, r.Name,
                ProjectService.IsOnline(r, now) ? RunnerStatuses.Online : RunnerStatuses.Offline,
                r.LastSeenAt, r.Version, r.Hostname, r.Agents, r.PreviewProvider))
            .OrderBy(r => r.Status == RunnerStatuses.Online ? 0 : 1)
            .ThenByDescending(r => r.LastSeenAt ?? DateTimeOffset.MinValue)
            .ThenBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
    }

    public async Task<IReadOnlyList<RunnerTokenView>> ListTokensAsync(Guid userId, CancellationToken ct)
    {
        var rows = await db.RunnerTokens.AsNoTracking().Where(t => t.OwnerId == userId).OrderByDescending(t => t.CreatedAt).ToListAsync(ct);
        return rows.Select(t => new RunnerTokenView(t.Id, t.Name, t.Prefix, t.CreatedAt, t.RevokedAt, t.LastUsedAt, t.RunnerId)).ToList();
    }

    /// <summary>
    /// Creates a token bound to one runner id: 32 random bytes, base64url, "svr_" in front. Only its SHA-256 is stored.
    /// An explicit <c>runnerId</c> may name a runner that already has tokens (to rotate them); an id made from the name
    /// is one no token or runner has yet, so a new token never silently speaks for an existing runner. An id that is another
    /// user's (their runner or token has it; for anyone but the owner, the AppHost's default runner id too) is taken:
    /// the broker would refuse the link anyway (docs/runner-protocol.md).
    /// </summary>
    public async Task<ServiceResult<CreatedRunnerToken>> CreateTokenAsync(Guid userId, CreateRunnerTokenRequest request, CancellationToken ct)
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

        string runnerId;
        if (request.RunnerId is not null)
        {
            runnerId = request.RunnerId.Trim();
            if (!RunnerIds.IsValid(runnerId))
            {
                return new ServiceResult<CreatedRunnerToken>.Invalid(new Dictionary<string, string[]> { ["runnerId"] = [RunnerIds.Rule] });
            }
            if (await TakenByOthersAsync(userId, runnerId, ct))
            {
                return new ServiceResult<CreatedRunnerToken>.Invalid(new Dictionary<string, string[]> { ["runnerId"] = [RunnerIdTaken] });
            }
        }
        else
        {
            var baseId = RunnerIds.FromName(name);
            var taken = (await db.RunnerTokens.Where(t => t.RunnerId != null && t.RunnerId.StartsWith(baseId)).Select(t => t.RunnerId!).ToListAsync(ct))
                .Concat(await db.Runners.Where(r => r.Id.StartsWith(baseId)).Select(r => r.Id).ToListAsync(ct))
                .Append(options.Value.DefaultRunnerId)
                .ToHashSet(StringComparer.Ordinal);
            runnerId = UniqueNames.FirstFree(baseId, taken, RunnerIds.MaxLength, RunnerIds.FromName);
        }

        var token = Secrets.New(TokenPrefix);
        var row = new RunnerToken
        {
            Id = Guid.CreateVersion7(),
            OwnerId = userId,
            Name = name,
            RunnerId = runnerId,
            Hash = Secrets.HashOf(token),
            Prefix = token[..ShownPrefixLength],
            CreatedAt = time.GetUtcNow(),
        };
        db.RunnerTokens.Add(row);
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Runner token {TokenId} ({Prefix}…) created for {Name} as runner {RunnerId} of user {UserId}", row.Id, row.Prefix, row.Name, runnerId, userId);
        return new CreatedRunnerToken(row.Id, row.Name, token, row.Prefix, row.CreatedAt, runnerId);
    }

    /// <summary>
    /// Revokes a token: the broker refuses it from then on, and the replica holding a link made with it closes that link
    /// on the NOTIFY sent in the same transaction (or, if that is lost, at its next check). Revoking twice is harmless.
    /// False for a token that is missing or another user's.
    /// </summary>
    public async Task<bool> RevokeTokenAsync(Guid userId, Guid id, CancellationToken ct)
    {
        var row = await db.RunnerTokens.FirstOrDefaultAsync(t => t.Id == id && t.OwnerId == userId, ct);
        if (row is null) return false;
        if (row.RevokedAt is null)
        {
            var strategy = db.Database.CreateExecutionStrategy();
            await strategy.ExecuteAsync(async () =>
            {
                await using var tx = await db.Database.BeginTransactionAsync(ct);
                row.RevokedAt = time.GetUtcNow();
                await db.SaveChangesAsync(ct);
                await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.RevokedTokensChannel}, {id.ToString()})", ct);
                await tx.CommitAsync(ct);
            });
            logger.LogInformation("Runner token {TokenId} ({Prefix}…) revoked", row.Id, row.Prefix);
        }
        return true;
    }

    /// <summary>Whether another user has <paramref name="runnerId"/>: their runner row, a token of theirs bound to it, or the default id.</summary>
    private async Task<bool> TakenByOthersAsync(Guid userId, string runnerId, CancellationToken ct) =>
        (runnerId == options.Value.DefaultRunnerId && userId != owner.Id)
        || await db.Runners.AnyAsync(r => r.Id == runnerId && r.OwnerId != userId, ct)
        || await db.RunnerTokens.AnyAsync(t => t.RunnerId == runnerId && t.OwnerId != userId, ct);
}
