// Accounts (docs/accounts.md): who signs in, and the secrets that stand for them. Projects, runners and runner tokens
// carry their user's id (OwnerId); events and checkpoints belong to their project's user.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Identity;

namespace SentryVibe.Data;

public sealed class User : IdentityUser<Guid>
{
    public string? DisplayName { get; set; }
    /// <summary>The instance's owner: created at first start, signs in with the AppHost's login link, invites others.</summary>
    public bool IsOwner { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>What the UI calls this user.</summary>
    public string Label => DisplayName is { Length: > 0 } name ? name : Email ?? UserName ?? Id.ToString();
}

/// <summary>A named bearer token for the REST API and the VS Code extension, shown once and stored only as a hash.</summary>
public sealed class PersonalToken
{
    public const string Prefix = "svp_";

    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public required string Name { get; set; }
    public required byte[] Hash { get; set; }
    /// <summary>First characters, for recognising a token in the UI.</summary>
    public required string Start { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
}

/// <summary>A single-use sign-up link an owner makes (<c>/signup?code=svi_…</c>); only its hash is stored.</summary>
public sealed class Invitation
{
    public const string Prefix = "svi_";

    public Guid Id { get; set; }
    public required byte[] Hash { get; set; }
    /// <summary>Who made it.</summary>
    public Guid CreatedBy { get; set; }
    /// <summary>A note for the owner's list (e.g. whom it was for); not checked at sign-up.</summary>
    public string? Note { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? UsedAt { get; set; }
    public Guid? UsedBy { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>How every stored secret (runner tokens, personal tokens, invitation codes) is kept: SHA-256 of its UTF-8 bytes.</summary>
public static class Secrets
{
    public static byte[] HashOf(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>A new secret: the prefix and 32 random bytes in URL-safe base64.</summary>
    public static string New(string prefix) =>
        prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
