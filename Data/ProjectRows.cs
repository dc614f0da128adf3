using Npgsql;
using NpgsqlTypes;
using SentryVibe.Protocol;

namespace SentryVibe.Data;

/// <summary>
/// Project rows read and written with plain SQL, for the broker's event intake: it folds events into them with
/// <see cref="ProjectProjector"/> and so needs no EF Core (docs/architecture.md, "Events are an append-only log"). Web
/// reads and writes the same rows through <see cref="SentryVibeDb"/>, where each column is named after its property.
/// </summary>
public static class ProjectRows
{
    /// <summary>The columns <see cref="ProjectProjector.Apply"/> writes, and so <see cref="Update"/> stores.</summary>
    public static readonly IReadOnlyList<string> Projected =
    [
        nameof(Project.Status), nameof(Project.StatusReason), nameof(Project.Turns), nameof(Project.Todos), nameof(Project.Framework),
        nameof(Project.RunCommand), nameof(Project.Path), nameof(Project.SessionId), nameof(Project.DevServer), nameof(Project.CostUsd),
        nameof(Project.LastEventId), nameof(Project.UpdatedAt), nameof(Project.DeletedAt),
    ];

    /// <summary>The columns only Web writes: whose the project is, what it was asked, where it runs, and its lifecycle.</summary>
    public static readonly IReadOnlyList<string> NotProjected =
    [
        nameof(Project.Id), nameof(Project.OwnerId), nameof(Project.Slug), nameof(Project.Name), nameof(Project.Prompt),
        nameof(Project.TemplateId), nameof(Project.TemplateUrl), nameof(Project.RunnerId), nameof(Project.Agent),
        nameof(Project.PreviewId), nameof(Project.CreatedAt), nameof(Project.DeleteRequestedAt),
    ];

    private static readonly string[] Columns = [.. NotProjected, .. Projected];

    /// <summary>The rows whose ids are <c>@ids</c>, every column; <see cref="Read"/> reads one.</summary>
    public static readonly string SelectSql = $"""SELECT {string.Join(", ", Columns.Select(c => $"\"{c}\""))} FROM projects WHERE "Id" = ANY(@ids)""";

    private static readonly string UpdateSql =
        $"""UPDATE projects SET {string.Join(", ", Projected.Select(c => $"\"{c}\" = @{c}"))} WHERE "Id" = @Id""";

    public static Project Read(NpgsqlDataReader row)
    {
        int At(string column) => Array.IndexOf(Columns, column);
        T Get<T>(string column) => row.GetFieldValue<T>(At(column));
        string? Text(string column) => row.IsDBNull(At(column)) ? null : Get<string>(column);
        T? Value<T>(string column) where T : struct => row.IsDBNull(At(column)) ? null : Get<T>(column);
        return new Project
        {
            Id = Get<Guid>(nameof(Project.Id)),
            OwnerId = Value<Guid>(nameof(Project.OwnerId)),
            Slug = Get<string>(nameof(Project.Slug)),
            Name = Get<string>(nameof(Project.Name)),
            Prompt = Get<string>(nameof(Project.Prompt)),
            TemplateId = Get<string>(nameof(Project.TemplateId)),
            TemplateUrl = Text(nameof(Project.TemplateUrl)),
            RunnerId = Text(nameof(Project.RunnerId)),
            Agent = Get<string>(nameof(Project.Agent)),
            PreviewId = Get<string>(nameof(Project.PreviewId)),
            CreatedAt = Get<DateTimeOffset>(nameof(Project.CreatedAt)),
            DeleteRequestedAt = Value<DateTimeOffset>(nameof(Project.DeleteRequestedAt)),
            Status = Get<string>(nameof(Project.Status)),
            StatusReason = Text(nameof(Project.StatusReason)),
            Turns = Get<int>(nameof(Project.Turns)),
            Todos = JsonColumn.Read<List<TodoItem>>(Get<string>(nameof(Project.Todos))),
            Framework = Text(nameof(Project.Framework)),
            RunCommand = Text(nameof(Project.RunCommand)),
            Path = Text(nameof(Project.Path)),
            SessionId = Text(nameof(Project.SessionId)),
            DevServer = JsonColumn.Read<DevServerState>(Get<string>(nameof(Project.DevServer))),
            CostUsd = Get<decimal>(nameof(Project.CostUsd)),
            LastEventId = Get<long>(nameof(Project.LastEventId)),
            UpdatedAt = Get<DateTimeOffset>(nameof(Project.UpdatedAt)),
            DeletedAt = Value<DateTimeOffset>(nameof(Project.DeletedAt)),
        };
    }

    /// <summary>Stores the projected columns of <paramref name="project"/> (<see cref="Projected"/>), and no other.</summary>
    public static NpgsqlBatchCommand Update(Project project)
    {
        var command = new NpgsqlBatchCommand(UpdateSql);
        var p = command.Parameters;
        void Text(string column, string? value) => p.Add(new NpgsqlParameter(column, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });
        p.AddWithValue(nameof(Project.Id), project.Id);
        p.AddWithValue(nameof(Project.Status), project.Status);
        Text(nameof(Project.StatusReason), project.StatusReason);
        p.AddWithValue(nameof(Project.Turns), project.Turns);
        p.Add(new NpgsqlParameter(nameof(Project.Todos), NpgsqlDbType.Jsonb) { Value = JsonColumn.Write(project.Todos) });
        Text(nameof(Project.Framework), project.Framework);
        Text(nameof(Project.RunCommand), project.RunCommand);
        Text(nameof(Project.Path), project.Path);
        Text(nameof(Project.SessionId), project.SessionId);
        p.Add(new NpgsqlParameter(nameof(Project.DevServer), NpgsqlDbType.Jsonb) { Value = JsonColumn.Write(project.DevServer) });
        p.AddWithValue(nameof(Project.CostUsd), project.CostUsd);
        p.AddWithValue(nameof(Project.LastEventId), project.LastEventId);
        p.AddWithValue(nameof(Project.UpdatedAt), project.UpdatedAt.ToUniversalTime());
        p.Add(new NpgsqlParameter(nameof(Project.DeletedAt), NpgsqlDbType.TimestampTz)
        {
            Value = project.DeletedAt is { } deleted ? deleted.ToUniversalTime() : DBNull.Value,
        });
        return command;
    }
}
