// Personal API tokens (docs/accounts.md): named, shown once, stored as a hash, revocable, with a last-used time. The
// bearer handler (ApiTokenAuthentication) looks them up on every request, so a revoked one is refused at once.
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Accounts;

public sealed record PersonalTokenView(Guid Id, string Name, string Start, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt);

/// <summary>The one answer that carries the token itself.</summary>
public sealed record CreatedPersonalToken(Guid Id, string Name, string Token, string Start, DateTimeOffset CreatedAt);

public sealed record CreatePersonalTokenRequest(string? Name);

public sealed class PersonalTokens(SentryVibeDb db, TimeProvider time, ILogger<PersonalTokens> logger)
{
    public const int MaxNameLength = 100;
    public const int ShownStartLength = 12;

    /// <summary>How stale the last-used time may be: a busy client does not write its token's row on every request.</summary>
    public static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    public async Task<IReadOnlyList<PersonalTokenView>> ListAsync(Guid userId, CancellationToken ct) =>
        await db.PersonalTokens.AsNoTracking()
            .Where(t => t.UserId == userId)
            .OrderByDescending(t => t.CreatedAt)
            .Select(t => new PersonalTokenView(t.Id, t.Name, t.Start, t.CreatedAt, t.LastUsedAt, t.RevokedAt))
            .ToListAsync(ct);

    public async Task<ServiceResult<CreatedPersonalToken>> CreateAsync(Guid userId, CreatePersonalTokenRequest request, CancellationToken ct)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            return new ServiceResult<CreatedPersonalToken>.Invalid(new Dictionary<string, string[]> { ["name"] = ["A name is required (e.g. \"VS Code on my laptop\")."] });
        }
        if (name.Length > MaxNameLength)
        {
            return new ServiceResult<CreatedPersonalToken>.Invalid(new Dictionary<string, string[]> { ["name"] = [$"The name is longer than {MaxNameLength} characters."] });
        }

        var token = Secrets.New(PersonalToken.Prefix);
        var row = new PersonalToken
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            Name = name,
            Hash = Secrets.HashOf(token),
            Start = token[..ShownStartLength],
            CreatedAt = time.GetUtcNow(),
        };
        db.PersonalTokens.Add(row);
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Personal token {TokenId} ({Start}…) created for user {UserId}", row.Id, row.Start, userId);
        return new ServiceResult<CreatedPersonalToken>.Ok(new CreatedPersonalToken(row.Id, row.Name, token, row.Start, row.CreatedAt));
    }

    /// <summary>Revokes one of <paramref name="userId"/>'s tokens; another user's token is "not found", as is an unknown one.</summary>
    public async Task<bool> RevokeAsync(Guid userId, Guid id, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var found = await db.PersonalTokens.Where(t => t.Id == id && t.UserId == userId).ExecuteUpdateAsync(
            s => s.SetProperty(t => t.RevokedAt, t => t.RevokedAt ?? now), ct);
        if (found > 0) logger.LogInformation("Personal token {TokenId} revoked", id);
        return found > 0;
    }

    /// <summary>The user a presented personal token stands for, or null (unknown, revoked, or its user is gone).</summary>
    public async Task<User?> AuthenticateAsync(string presented, CancellationToken ct)
    {
        var hash = Secrets.HashOf(presented);
        var match = await db.PersonalTokens.AsNoTracking()
            .Where(t => t.Hash == hash && t.RevokedAt == null)
            .Join(db.Users, t => t.UserId, u => u.Id, (t, u) => new { t.Id, t.LastUsedAt, User = u })
            .FirstOrDefaultAsync(ct);
        if (match is null) return null;

        var now = time.GetUtcNow();
        if (match.LastUsedAt is null || now - match.LastUsedAt > LastUsedResolution)
        {
            await db.PersonalTokens.Where(t => t.Id == match.Id).ExecuteUpdateAsync(s => s.SetProperty(t => t.LastUsedAt, now), ct);
        }
        return match.User;
    }
}
