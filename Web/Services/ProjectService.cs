// The project use cases (create, follow up, dev server, checkpoints, delete), shared by /api and the Blazor UI. Every one
// takes the caller's user id: another user's project answers exactly like a missing one (docs/security.md).
using System.Diagnostics;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Services;

public sealed class ProjectService(
    SentryVibeDb db,
    IOptions<SentryVibeOptions> options,
    OwnerAccount owner,
    TimeProvider time,
    ILogger<ProjectService> logger)
{
    public const string AgentMissingNotice = "Claude Code CLI not found on the runner; scaffolding the template only.";
    public const int MaxNameLength = 200;
    public const string GitTemplateId = "git";
    public const int MaxEventPage = 1000;
    public const string NoRunnerYet =
        "You have no runner yet: create a runner token on the Runners page, then start `sentryvibe-runner run` with it.";

    private SentryVibeOptions Options => options.Value;

    /// <summary>The not-found words for a project id, the same whether it is missing or another user's.</summary>
    public static string Missing(Guid id) => $"No project {id}.";

    /// <summary>The user's projects, newest first; projects being deleted are hidden.</summary>
    public async Task<IReadOnlyList<ProjectView>> ListAsync(Guid userId, CancellationToken ct)
    {
        var rows = await db.Projects.AsNoTracking()
            .Where(p => p.OwnerId == userId && p.DeleteRequestedAt == null && p.DeletedAt == null)
            .OrderByDescending(p => p.CreatedAt)
            .ToListAsync(ct);
        return rows.Select(ProjectView.From).ToList();
    }

    /// <summary>The project, also while its deletion is pending (<see cref="ProjectView.DeleteRequestedAt"/>); null once deleted.</summary>
    public async Task<ProjectView?> GetAsync(Guid userId, Guid id, CancellationToken ct)
    {
        var row = await db.Projects.AsNoTracking().FirstOrDefaultAsync(p => p.Id == id && p.OwnerId == userId && p.DeletedAt == null, ct);
        return row is null ? null : ProjectView.From(row);
    }

    /// <summary>Whether the project exists and is the user's (another user's is as good as missing).</summary>
    public Task<bool> ExistsAsync(Guid userId, Guid id, CancellationToken ct) =>
        db.Projects.AsNoTracking().AnyAsync(p => p.Id == id && p.OwnerId == userId && p.DeletedAt == null, ct);

    /// <summary>
    /// A new project of <paramref name="userId"/>, on one of the user's runners: the one named, else the user's most
    /// recently online, else most recently seen. The owner with no runner yet gets the AppHost's local runner id
    /// (<c>SentryVibe:DefaultRunnerId</c>, whose shared-secret runner is the owner's); anyone else is told to add one.
    /// </summary>
    public async Task<ServiceResult<ProjectView>> CreateAsync(Guid userId, CreateProjectRequest request, CancellationToken ct)
    {
        // Prompt, template, template URL and agent: the rule the runner applies too (Protocol's StartBuildRules).
        var check = StartBuildRules.Check(request.Prompt, request.TemplateId, request.TemplateUrl, request.Agent);
        var errors = check.Errors.ToDictionary(e => e.Key, e => new[] { e.Value });
        var prompt = check.Prompt;
        if (PromptSizeProblem(request.Prompt) is { } tooLong)
        {
            errors["prompt"] = [tooLong];
        }
        var template = check.Template;
        var templateUrl = check.TemplateUrl;
        var name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim();
        if (name is { Length: > MaxNameLength })
        {
            errors["name"] = [$"The name is longer than {MaxNameLength} characters."];
        }

        var runners = await db.Runners.AsNoTracking().Where(r => r.OwnerId == userId).ToListAsync(ct);
        Runner? runner = null;
        if (request.RunnerId is not null)
        {
            runner = runners.FirstOrDefault(r => r.Id == request.RunnerId);
            if (runner is null)
            {
                errors["runnerId"] = [runners.Count == 0
                    ? $"Unknown runner '{request.RunnerId}': none of your runners has registered yet."
                    : $"Unknown runner '{request.RunnerId}'. Your runners: {string.Join(", ", runners.Select(r => r.Id))}."];
            }
        }
        else if (runners.Count == 0 && !await MayUseDefaultRunnerAsync(userId, ct))
        {
            errors["runnerId"] = [NoRunnerYet];
        }
        if (errors.Count > 0) return new ServiceResult<ProjectView>.Invalid(errors);

        var now = time.GetUtcNow();
        // An explicit runner, else the one most recently seen online, else the one most recently seen at all
        // (the command waits for it), else the AppHost's local runner id.
        runner ??= runners.Where(r => IsOnline(r, now)).MaxBy(r => r.LastSeenAt)
            ?? runners.OrderByDescending(r => r.LastSeenAt ?? DateTimeOffset.MinValue).ThenByDescending(r => r.CreatedAt).FirstOrDefault();
        var runnerId = runner?.Id ?? Options.DefaultRunnerId;

        var agent = check.Agent;
        string? agentNotice = null;
        if (agent is null)
        {
            // A runner that never registered has not told us its agents: ask for the default and let it decide.
            if (runner is null || runner.Agents.Contains(Agents.ClaudeCode))
            {
                agent = Agents.ClaudeCode;
            }
            else
            {
                agent = Agents.None;
                agentNotice = AgentMissingNotice;
            }
        }

        var waiting = runner is null
            ? $"No runner has connected yet; the build starts when runner '{runnerId}' connects (start one with `sentryvibe-runner run`)."
            : IsOnline(runner, now) ? null : $"Runner '{runnerId}' is offline; the build starts when it reconnects.";
        var statusReason = string.Join(" ", new[] { waiting, agentNotice }.Where(s => s is not null));

        // A git template is inspected by the runner once cloned; until then the project says "git".
        var templateId = template?.Id ?? GitTemplateId;
        var baseSlug = Slugs.From(name ?? prompt!);

        // A concurrent create may take the same slug between our check and the insert: the unique index says so, we try again.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var strategy = db.Database.CreateExecutionStrategy();
                var project = await strategy.ExecuteAsync(async () =>
                {
                    db.ChangeTracker.Clear();
                    await using var tx = await db.Database.BeginTransactionAsync(ct);
                    var slug = await UniqueSlugAsync(baseSlug, ct);
                    var project = new Project
                    {
                        Id = Guid.CreateVersion7(),
                        OwnerId = userId,
                        Slug = slug,
                        Name = name ?? UniqueNames.NameFrom(prompt!),
                        Prompt = prompt!,
                        Status = ProjectStatuses.Pending,
                        StatusReason = statusReason.Length == 0 ? null : statusReason,
                        TemplateId = templateId,
                        TemplateUrl = templateUrl,
                        RunnerId = runnerId,
                        Agent = agent,
                        PreviewId = PreviewUrls.NewPreviewId(),
                        CreatedAt = now,
                        UpdatedAt = now,
                    };
                    db.Projects.Add(project);
                    List<ProjectEvent> events = [new UserMessage(prompt!)];
                    if (agentNotice is not null) events.Add(new BuildLog(agentNotice, "warning"));
                    var command = new StartBuild(project.Id, slug, prompt!, template?.Id ?? "", agent, TemplateUrl: templateUrl, PreviewId: project.PreviewId);
                    await AppendAsync(project, events, command, ct);
                    await tx.CommitAsync(ct);
                    return project;
                });
                logger.LogInformation("Project {ProjectId} ({Slug}) of user {UserId} queued for runner {RunnerId} with template {TemplateId} and agent {Agent}",
                    project.Id, project.Slug, userId, runnerId, templateId, agent);
                return ProjectView.From(project);
            }
            catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } && attempt < 5)
            {
                logger.LogDebug("Slug {Slug} was taken concurrently; retrying", baseSlug);
            }
        }
    }

    public async Task<ServiceResult<CommandAccepted>> SendMessageAsync(Guid userId, Guid id, SendMessageRequest request, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var prompt = ValidatePrompt(request.Prompt, errors);
        if (errors.Count > 0) return new ServiceResult<CommandAccepted>.Invalid(errors);
        return await QueueAsync(userId, id, p => new FollowUpTurn(p.Id, prompt!), [new UserMessage(prompt!)], ct);
    }

    public Task<ServiceResult<CommandAccepted>> StartDevServerAsync(Guid userId, Guid id, CancellationToken ct) =>
        QueueAsync(userId, id, p => new StartDevServer(p.Id, p.PreviewId), [], ct);

    public Task<ServiceResult<CommandAccepted>> StopDevServerAsync(Guid userId, Guid id, CancellationToken ct) =>
        QueueAsync(userId, id, p => new StopDevServer(p.Id), [], ct);

    public Task<ServiceResult<CommandAccepted>> CancelAsync(Guid userId, Guid id, CancellationToken ct) =>
        QueueAsync(userId, id, p => new CancelBuild(p.Id), [], ct);

    public async Task<ServiceResult<CommandAccepted>> RestoreCheckpointAsync(Guid userId, Guid id, string checkpointId, CancellationToken ct)
    {
        var checkpoints = await ListCheckpointsAsync(userId, id, ct);
        if (checkpoints is null) return new ServiceResult<CommandAccepted>.NotFound(Missing(id));
        if (!checkpoints.Any(c => c.Id == checkpointId))
        {
            return new ServiceResult<CommandAccepted>.NotFound($"Project {id} has no checkpoint '{checkpointId}'.");
        }
        return await QueueAsync(userId, id, p => new RestoreCheckpoint(p.Id, checkpointId), [], ct);
    }

    /// <summary>
    /// Marks the project as being deleted and queues delete-project; the row becomes a hidden tombstone when the runner
    /// reports project-deleted (or the command expires). Asking twice answers with the first command.
    /// </summary>
    public async Task<ServiceResult<CommandAccepted>> DeleteAsync(Guid userId, Guid id, CancellationToken ct)
    {
        var existing = await db.Projects.AsNoTracking().FirstOrDefaultAsync(p => p.Id == id && p.OwnerId == userId && p.DeletedAt == null, ct);
        if (existing is null) return new ServiceResult<CommandAccepted>.NotFound(Missing(id));
        if (existing.DeleteRequestedAt is not null)
        {
            var earlier = await db.Commands.AsNoTracking()
                .Where(c => c.ProjectId == id && c.Type == CommandTypes.DeleteProject)
                .OrderByDescending(c => c.CreatedAt)
                .FirstOrDefaultAsync(ct);
            if (earlier is not null) return new CommandAccepted(earlier.Id, id, earlier.Type, earlier.RunnerId);
        }
        return await QueueAsync(userId, id, p => new DeleteProject(p.Id), [], ct, allowWhileDeleting: true,
            change: p => p.DeleteRequestedAt ??= time.GetUtcNow());
    }

    /// <summary>Checkpoints, newest first: the checkpoint-created events of the log, plus any rows of the checkpoints table.</summary>
    public async Task<IReadOnlyList<CheckpointView>?> ListCheckpointsAsync(Guid userId, Guid id, CancellationToken ct)
    {
        if (!await ExistsAsync(userId, id, ct)) return null;
        var rows = await db.Checkpoints.AsNoTracking().Where(c => c.ProjectId == id).ToListAsync(ct);
        var events = await db.Events.AsNoTracking()
            .Where(e => e.ProjectId == id && e.Type == EventTypes.CheckpointCreated)
            .OrderBy(e => e.Id)
            .ToListAsync(ct);
        var byId = rows.ToDictionary(r => r.Id, r => new CheckpointView(r.Id, r.Message, r.CreatedAt, r.Turn));
        foreach (var e in events)
        {
            if (System.Text.Json.JsonSerializer.Deserialize<ProjectEvent>(e.Payload, LinkProtocol.JsonOptions) is CheckpointCreated c)
            {
                byId.TryAdd(c.CheckpointId, new CheckpointView(c.CheckpointId, c.Message, c.CreatedAt, c.Turn));
            }
        }
        return byId.Values.OrderByDescending(c => c.CreatedAt).ToList();
    }

    /// <summary>Events of the project after <paramref name="after"/>, oldest first; null when the project does not exist (or is not the user's).</summary>
    public async Task<IReadOnlyList<EventView>?> ListEventsAsync(Guid userId, Guid id, long after, int limit, CancellationToken ct)
    {
        if (!await ExistsAsync(userId, id, ct)) return null;
        return await ReadEventsAsync(userId, id, after, limit, ct);
    }

    /// <summary>
    /// One page of the log, without the deleted check (the event stream re-reads often); empty unless the project is
    /// the user's, which the same query checks (the project's primary key: no extra round trip).
    /// </summary>
    public async Task<IReadOnlyList<EventView>> ReadEventsAsync(Guid userId, Guid id, long after, int limit, CancellationToken ct)
    {
        var rows = await db.Events.AsNoTracking()
            .Where(e => e.ProjectId == id && e.Id > after && db.Projects.Any(p => p.Id == id && p.OwnerId == userId))
            .OrderBy(e => e.Id)
            .Take(Math.Clamp(limit, 1, MaxEventPage))
            .ToListAsync(ct);
        return rows.Select(EventView.From).ToList();
    }

    public static bool IsOnline(Runner runner, DateTimeOffset now) =>
        runner.Status == RunnerStatuses.Online && runner.LastSeenAt is { } seen && now - seen <= LinkProtocol.OfflineAfter;

    private string? ValidatePrompt(string? prompt, Dictionary<string, string[]> errors)
    {
        if ((StartBuildRules.PromptProblem(prompt) ?? PromptSizeProblem(prompt)) is { } problem)
        {
            errors["prompt"] = [problem];
            return null;
        }
        return prompt!.Trim();
    }

    /// <summary>Web's own limit on a prompt (it stores every prompt); the runner takes what Web lets through.</summary>
    private string? PromptSizeProblem(string? prompt) =>
        prompt is not null && Encoding.UTF8.GetByteCount(prompt) > Options.MaxPromptBytes
            ? $"The prompt is longer than {Options.MaxPromptBytes / 1024} KiB."
            : null;

    /// <summary>
    /// The owner may fall back to the default runner id when they have no runner: the AppHost's local runner links as
    /// it with the shared secret, which is the owner's. Never when another user's runner holds that id.
    /// </summary>
    private async Task<bool> MayUseDefaultRunnerAsync(Guid userId, CancellationToken ct) =>
        userId == owner.Id
        && !await db.Runners.AnyAsync(r => r.Id == Options.DefaultRunnerId && r.OwnerId != null && r.OwnerId != userId, ct);

    private async Task<ServiceResult<CommandAccepted>> QueueAsync(
        Guid userId,
        Guid id,
        Func<Project, RunnerCommand> makeCommand,
        IReadOnlyList<ProjectEvent> events,
        CancellationToken ct,
        bool allowWhileDeleting = false,
        Action<Project>? change = null)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async Task<ServiceResult<CommandAccepted>> () =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // Row lock: a delete and a follow-up racing each other see one another's outcome.
            var project = await db.Projects
                .FromSql($"""SELECT * FROM projects WHERE "Id" = {id} AND "OwnerId" = {userId} AND "DeletedAt" IS NULL FOR UPDATE""")
                .FirstOrDefaultAsync(ct);
            if (project is null) return new ServiceResult<CommandAccepted>.NotFound(Missing(id));
            if (project.DeleteRequestedAt is not null && !allowWhileDeleting)
            {
                return new ServiceResult<CommandAccepted>.Conflict($"Project '{project.Slug}' is being deleted.");
            }
            change?.Invoke(project);
            var command = makeCommand(project);
            var (row, eventIds) = await AppendAsync(project, events, command, ct);
            await tx.CommitAsync(ct);
            return new CommandAccepted(row.Id, project.Id, row.Type, row.RunnerId, eventIds.Count > 0 ? eventIds[^1] : null);
        });
    }

    /// <summary>
    /// Appends events (folded into the row) and one command, then NOTIFYs inside the caller's transaction so the
    /// wake-ups fire exactly when the rows become visible.
    /// </summary>
    private async Task<(Command Row, List<long> EventIds)> AppendAsync(Project project, IReadOnlyList<ProjectEvent> events, RunnerCommand command, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var eventRows = events.Select(e => new Event
        {
            ProjectId = project.Id,
            Type = Discriminators.Of(e),
            Payload = Discriminators.Serialize(e),
            Timestamp = now,
            CreatedAt = now,
        }).ToList();
        db.Events.AddRange(eventRows);

        var runnerId = project.RunnerId ?? Options.DefaultRunnerId;
        var row = new Command
        {
            Id = Guid.CreateVersion7(),
            RunnerId = runnerId,
            ProjectId = project.Id,
            Type = Discriminators.Of(command),
            Payload = Discriminators.Serialize(command),
            Status = CommandStatuses.Queued,
            TraceParent = Activity.Current?.Id,
            CreatedAt = now,
            ExpiresAt = now + Options.CommandTtl,
        };
        db.Commands.Add(row);
        await db.SaveChangesAsync(ct);

        for (var i = 0; i < events.Count; i++)
        {
            ProjectProjector.Apply(project, events[i], eventRows[i].Id, now);
        }
        project.UpdatedAt = now;
        await db.SaveChangesAsync(ct);

        foreach (var e in eventRows)
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.EventsChannel}, {EventNotification.Format(project.Id, e.Id)})", ct);
        }
        await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.CommandsChannel}, {runnerId})", ct);
        return (row, eventRows.Select(e => e.Id).ToList());
    }

    private async Task<string> UniqueSlugAsync(string baseSlug, CancellationToken ct)
    {
        var prefix = Slugs.From(baseSlug, Slugs.MaxLength - 4);
        var taken = await db.Projects.AsNoTracking()
            .Where(p => p.Slug == baseSlug || p.Slug.StartsWith(prefix))
            .Select(p => p.Slug)
            .ToListAsync(ct);
        return UniqueNames.FirstFree(baseSlug, taken.ToHashSet());
    }
}
