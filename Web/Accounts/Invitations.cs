// Sign-up by invitation (docs/accounts.md): the owner makes a link (/signup?code=svi_…), shown once and stored as a hash;
// it expires, can be revoked, and makes exactly one account.
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Accounts;

public sealed record InvitationView(
    Guid Id, string? Note, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt,
    DateTimeOffset? UsedAt, string? UsedBy, DateTimeOffset? RevokedAt, string Status);

/// <summary>The one answer that carries the code itself, and the path that uses it.</summary>
public sealed record CreatedInvitation(Guid Id, string Code, string Path, string? Note, DateTimeOffset ExpiresAt);

public sealed record CreateInvitationRequest(string? Note, int? ExpiresInDays);

/// <summary>What a person fills in on the sign-up page.</summary>
public sealed record SignUpRequest(string? Code, string? Email, string? DisplayName, string? Password);

/// <summary>Where a presented code stands.</summary>
public enum InvitationState { Usable, Unknown, Used, Expired, Revoked }

public sealed class Invitations(SentryVibeDb db, UserManager<User> users, TimeProvider time, ILogger<Invitations> logger)
{
    public const int DefaultDays = 7;
    public const int MaxDays = 30;
    public const int MaxNoteLength = 200;
    public const int MaxDisplayNameLength = 100;

    public static string PathOf(string code) => "/signup?code=" + Uri.EscapeDataString(code);

    /// <summary>The words the sign-up page shows for a code that cannot be used.</summary>
    public static string Explain(InvitationState state) => state switch
    {
        InvitationState.Used => "This invitation link has already been used. Ask the person who invited you for a new one.",
        InvitationState.Expired => "This invitation link has expired. Ask the person who invited you for a new one.",
        InvitationState.Revoked => "This invitation link was withdrawn. Ask the person who invited you for a new one.",
        _ => "This invitation link is not valid. Check that you copied all of it, or ask for a new one.",
    };

    public async Task<IReadOnlyList<InvitationView>> ListAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var rows = await db.Invitations.AsNoTracking()
            .OrderByDescending(i => i.CreatedAt)
            .GroupJoin(db.Users, i => i.UsedBy, u => u.Id, (i, u) => new { i, u })
            .SelectMany(x => x.u.DefaultIfEmpty(), (x, u) => new { x.i, u })
            .ToListAsync(ct);
        return rows.Select(r => new InvitationView(
            r.i.Id, r.i.Note, r.i.CreatedAt, r.i.ExpiresAt, r.i.UsedAt, r.u?.Label, r.i.RevokedAt,
            StateOf(r.i, now) switch
            {
                InvitationState.Used => "used",
                InvitationState.Revoked => "revoked",
                InvitationState.Expired => "expired",
                _ => "pending",
            })).ToList();
    }

    public async Task<ServiceResult<CreatedInvitation>> CreateAsync(Guid createdBy, CreateInvitationRequest request, CancellationToken ct)
    {
        var note = request.Note?.Trim() is { Length: > 0 } n ? n : null;
        if (note is { Length: > MaxNoteLength })
        {
            return Invalid("note", $"The note is longer than {MaxNoteLength} characters.");
        }
        var days = request.ExpiresInDays ?? DefaultDays;
        if (days is < 1 or > MaxDays)
        {
            return Invalid("expiresInDays", $"An invitation lasts from 1 to {MaxDays} days.");
        }

        var code = Secrets.New(Invitation.Prefix);
        var now = time.GetUtcNow();
        var row = new Invitation
        {
            Id = Guid.CreateVersion7(),
            Hash = Secrets.HashOf(code),
            CreatedBy = createdBy,
            Note = note,
            CreatedAt = now,
            ExpiresAt = now.AddDays(days),
        };
        db.Invitations.Add(row);
        await db.SaveChangesAsync(ct);
        logger.LogInformation("Invitation {InvitationId} created by {UserId}, expires {ExpiresAt}", row.Id, createdBy, row.ExpiresAt);
        return new CreatedInvitation(row.Id, code, PathOf(code), row.Note, row.ExpiresAt);
    }

    /// <summary>Withdraws an invitation nobody has used yet; false when there is no such invitation.</summary>
    public async Task<bool> RevokeAsync(Guid id, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var found = await db.Invitations.Where(i => i.Id == id)
            .ExecuteUpdateAsync(s => s.SetProperty(i => i.RevokedAt, i => i.UsedAt == null ? i.RevokedAt ?? now : i.RevokedAt), ct);
        if (found > 0) logger.LogInformation("Invitation {InvitationId} revoked", id);
        return found > 0;
    }

    /// <summary>Whether <paramref name="code"/> can make an account now (the sign-up page asks before showing its form).</summary>
    public async Task<InvitationState> CheckAsync(string? code, CancellationToken ct)
    {
        if (!LooksLikeCode(code)) return InvitationState.Unknown;
        var hash = Secrets.HashOf(code!);
        var row = await db.Invitations.AsNoTracking().FirstOrDefaultAsync(i => i.Hash == hash, ct);
        return row is null ? InvitationState.Unknown : StateOf(row, time.GetUtcNow());
    }

    /// <summary>
    /// Makes the account and uses up the invitation in one transaction: the claim is a conditional update, so of two
    /// sign-ups racing on one code exactly one gets it, and an account that cannot be made (a taken e-mail, a short
    /// password) leaves the invitation unused.
    /// </summary>
    public async Task<ServiceResult<User>> SignUpAsync(SignUpRequest request, CancellationToken ct)
    {
        var email = request.Email?.Trim() ?? "";
        var name = request.DisplayName?.Trim() ?? "";
        var errors = new Dictionary<string, string[]>();
        if (email.Length == 0) errors["email"] = ["Enter your e-mail address."];
        if (name.Length == 0) errors["displayName"] = ["Enter the name others should see."];
        else if (name.Length > MaxDisplayNameLength) errors["displayName"] = [$"The name is longer than {MaxDisplayNameLength} characters."];
        if (string.IsNullOrEmpty(request.Password)) errors["password"] = ["Choose a password."];
        if (errors.Count > 0) return new ServiceResult<User>.Invalid(errors);

        var state = await CheckAsync(request.Code, ct);
        if (state != InvitationState.Usable) return new ServiceResult<User>.NotFound(Explain(state));

        var hash = Secrets.HashOf(request.Code!);
        // Postgres' retrying strategy runs the whole transaction again after a transient failure, so it starts clean.
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            var now = time.GetUtcNow();
            var user = new User
            {
                Id = Guid.CreateVersion7(),
                UserName = email,
                Email = email,
                DisplayName = name,
                CreatedAt = now,
            };
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var claimed = await db.Invitations
                .Where(i => i.Hash == hash && i.UsedAt == null && i.RevokedAt == null && i.ExpiresAt > now)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.UsedAt, now).SetProperty(i => i.UsedBy, user.Id), ct);
            if (claimed == 0)
            {
                await transaction.RollbackAsync(ct);
                return new ServiceResult<User>.NotFound(Explain(await CheckAsync(request.Code, ct)));
            }

            var created = await users.CreateAsync(user, request.Password!);
            if (!created.Succeeded)
            {
                await transaction.RollbackAsync(ct);
                return new ServiceResult<User>.Invalid(ErrorsOf(created));
            }
            await transaction.CommitAsync(ct);
            logger.LogInformation("User {UserId} signed up with an invitation", user.Id);
            return (ServiceResult<User>)user;
        });
    }

    private static bool LooksLikeCode(string? code) =>
        code is { Length: > 4 and < 200 } && code.StartsWith(Invitation.Prefix, StringComparison.Ordinal);

    private static InvitationState StateOf(Invitation row, DateTimeOffset now) =>
        row.UsedAt is not null ? InvitationState.Used
        : row.RevokedAt is not null ? InvitationState.Revoked
        : row.ExpiresAt <= now ? InvitationState.Expired
        : InvitationState.Usable;

    /// <summary>Identity's errors, in the sign-up form's fields and in words a person understands.</summary>
    private static Dictionary<string, string[]> ErrorsOf(IdentityResult result)
    {
        var errors = new Dictionary<string, List<string>>();
        foreach (var error in result.Errors)
        {
            var (field, words) = error.Code switch
            {
                "DuplicateEmail" or "DuplicateUserName" => ("email", "There is already an account with this e-mail address. Sign in instead."),
                "InvalidEmail" or "InvalidUserName" => ("email", "That does not look like an e-mail address."),
                "PasswordTooShort" => ("password", error.Description.Replace("Passwords must be at least", "The password needs at least")),
                _ when error.Code.StartsWith("Password", StringComparison.Ordinal) => ("password", error.Description),
                _ => ("body", error.Description),
            };
            if (!errors.TryGetValue(field, out var list)) errors[field] = list = [];
            if (!list.Contains(words)) list.Add(words);
        }
        return errors.ToDictionary(e => e.Key, e => e.Value.ToArray());
    }

    private static ServiceResult<CreatedInvitation> Invalid(string field, string message) =>
        new ServiceResult<CreatedInvitation>.Invalid(new Dictionary<string, string[]> { [field] = [message] });
}
