using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using SentryVibe.Protocol;

namespace SentryVibe.Data;

/// <summary>
/// The one schema: Identity's users and passkeys (schema version 3) beside the app's tables. Web owns and migrates it;
/// Broker reads and writes the link's rows (docs/architecture.md).
/// </summary>
public sealed class SentryVibeDb(DbContextOptions<SentryVibeDb> options) : IdentityDbContext<User, IdentityRole<Guid>, Guid>(options)
{
    /// <summary>NOTIFY channel that carries the id of a new event row ("projectId:eventId").</summary>
    public const string EventsChannel = "sentryvibe_events";

    /// <summary>NOTIFY channel that carries the runner id of a newly queued command.</summary>
    public const string CommandsChannel = "sentryvibe_commands";

    /// <summary>NOTIFY channel that carries the id of a revoked runner token: the broker holding its link closes it.</summary>
    public const string RevokedTokensChannel = "sentryvibe_runner_tokens_revoked";

    public DbSet<Project> Projects => Set<Project>();
    public DbSet<Runner> Runners => Set<Runner>();
    public DbSet<RunnerToken> RunnerTokens => Set<RunnerToken>();
    public DbSet<Command> Commands => Set<Command>();
    public DbSet<Event> Events => Set<Event>();
    public DbSet<Checkpoint> Checkpoints => Set<Checkpoint>();
    public DbSet<PersonalToken> PersonalTokens => Set<PersonalToken>();
    public DbSet<Invitation> Invitations => Set<Invitation>();

    protected override void OnModelCreating(ModelBuilder model)
    {
        // Identity's tables, under names that read like the rest of the schema.
        base.OnModelCreating(model);
        model.Entity<User>(e =>
        {
            e.ToTable("users");
            e.Property(u => u.DisplayName).HasMaxLength(100);
            e.Ignore(u => u.Label);
        });
        model.Entity<IdentityRole<Guid>>().ToTable("roles");
        model.Entity<IdentityUserRole<Guid>>().ToTable("user_roles");
        model.Entity<IdentityUserClaim<Guid>>().ToTable("user_claims");
        model.Entity<IdentityUserLogin<Guid>>().ToTable("user_logins");
        model.Entity<IdentityUserToken<Guid>>().ToTable("user_tokens");
        model.Entity<IdentityRoleClaim<Guid>>().ToTable("role_claims");
        // Passkeys (Identity schema version 3) configured here rather than through IdentityOptions.Stores.SchemaVersion,
        // which only Web's container holds: Broker and the design-time factory build the same model.
        model.Entity<IdentityUserPasskey<Guid>>(e =>
        {
            e.ToTable("user_passkeys");
            e.HasKey(p => p.CredentialId);
            e.Property(p => p.CredentialId).HasMaxLength(1024); // WebAuthn: at most 1023 bytes
            e.OwnsOne(p => p.Data).ToJson();
            e.HasOne<User>().WithMany().HasForeignKey(p => p.UserId).IsRequired();
        });

        model.Entity<PersonalToken>(e =>
        {
            e.ToTable("personal_tokens");
            e.HasKey(t => t.Id);
            e.HasIndex(t => t.Hash).IsUnique();
            e.HasIndex(t => t.UserId);
            e.Property(t => t.Name).HasMaxLength(100);
            e.HasOne<User>().WithMany().HasForeignKey(t => t.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        model.Entity<Invitation>(e =>
        {
            e.ToTable("invitations");
            e.HasKey(i => i.Id);
            e.HasIndex(i => i.Hash).IsUnique();
            e.Property(i => i.Note).HasMaxLength(200);
        });

        model.Entity<Project>(e =>
        {
            e.ToTable("projects");
            e.HasKey(p => p.Id);
            e.HasIndex(p => p.Slug).IsUnique();
            e.HasIndex(p => p.PreviewId).IsUnique();
            e.HasIndex(p => p.RunnerId);
            e.HasIndex(p => p.OwnerId);
            e.Property(p => p.Slug).HasMaxLength(80);
            e.Property(p => p.Name).HasMaxLength(200);
            e.Property(p => p.Status).HasMaxLength(20);
            e.Property(p => p.Todos).HasColumnType("jsonb").HasConversion(Json<List<TodoItem>>(), JsonComparer<List<TodoItem>>());
            e.Property(p => p.DevServer).HasColumnType("jsonb").HasConversion(Json<DevServerState>(), JsonComparer<DevServerState>());
            e.Property(p => p.CostUsd).HasPrecision(18, 6);
        });

        model.Entity<Runner>(e =>
        {
            e.ToTable("runners");
            e.HasKey(r => r.Id);
            e.Property(r => r.Id).HasMaxLength(100);
            e.HasIndex(r => r.OwnerId);
            e.Property(r => r.Capabilities).HasColumnType("jsonb").HasConversion(Json<List<string>>(), JsonComparer<List<string>>());
            e.Property(r => r.Agents).HasColumnType("jsonb").HasConversion(Json<List<string>>(), JsonComparer<List<string>>());
        });

        model.Entity<RunnerToken>(e =>
        {
            e.ToTable("runner_tokens");
            e.HasKey(t => t.Id);
            e.HasIndex(t => t.Hash).IsUnique();
            e.HasIndex(t => t.RunnerId);
            e.HasIndex(t => t.OwnerId);
            e.Property(t => t.RunnerId).HasMaxLength(RunnerIds.MaxLength);
        });

        model.Entity<Command>(e =>
        {
            e.ToTable("commands");
            e.HasKey(c => c.Id);
            e.HasIndex(c => new { c.RunnerId, c.Status, c.CreatedAt });
            e.HasIndex(c => c.ProjectId);
            e.Property(c => c.Payload).HasColumnType("jsonb");
        });

        model.Entity<Event>(e =>
        {
            e.ToTable("events");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).UseIdentityAlwaysColumn();
            e.HasIndex(x => new { x.RunnerId, x.Seq }).IsUnique();
            e.HasIndex(x => new { x.ProjectId, x.Id });
            e.Property(x => x.Payload).HasColumnType("jsonb");
        });

        model.Entity<Checkpoint>(e =>
        {
            e.ToTable("checkpoints");
            e.HasKey(c => new { c.ProjectId, c.Id });
        });
    }

    private static Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<T, string> Json<T>() where T : new() =>
        new(v => JsonColumn.Write(v), v => JsonColumn.Read<T>(v));

    private static ValueComparer<T> JsonComparer<T>() where T : new() =>
        new((a, b) => JsonColumn.Write(a) == JsonColumn.Write(b), v => JsonColumn.Write(v).GetHashCode(), v => JsonColumn.Read<T>(JsonColumn.Write(v)));
}
