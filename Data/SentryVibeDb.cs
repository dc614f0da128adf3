using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using SentryVibe.Protocol;

namespace SentryVibe.Data;

public sealed class SentryVibeDb(DbContextOptions<SentryVibeDb> options) : DbContext(options)
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

    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<Project>(e =>
        {
            e.ToTable("projects");
            e.HasKey(p => p.Id);
            e.HasIndex(p => p.Slug).IsUnique();
            e.HasIndex(p => p.PreviewId).IsUnique();
            e.HasIndex(p => p.RunnerId);
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
            e.Property(r => r.Capabilities).HasColumnType("jsonb").HasConversion(Json<List<string>>(), JsonComparer<List<string>>());
            e.Property(r => r.Agents).HasColumnType("jsonb").HasConversion(Json<List<string>>(), JsonComparer<List<string>>());
        });

        model.Entity<RunnerToken>(e =>
        {
            e.ToTable("runner_tokens");
            e.HasKey(t => t.Id);
            e.HasIndex(t => t.Hash).IsUnique();
            e.HasIndex(t => t.RunnerId);
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
        new(v => JsonSerializer.Serialize(v, LinkProtocol.JsonOptions),
            v => JsonSerializer.Deserialize<T>(v, LinkProtocol.JsonOptions) ?? new T());

    private static ValueComparer<T> JsonComparer<T>() where T : new() =>
        new((a, b) => JsonSerializer.Serialize(a, LinkProtocol.JsonOptions) == JsonSerializer.Serialize(b, LinkProtocol.JsonOptions),
            v => JsonSerializer.Serialize(v, LinkProtocol.JsonOptions).GetHashCode(),
            v => JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(v, LinkProtocol.JsonOptions), LinkProtocol.JsonOptions) ?? new T());
}
