// The machine's PostgreSQL server as an Aspire executable resource, and its database as a child resource,
// shaped like Aspire.Hosting.PostgreSQL's server/database pair so WithReference(db) injects the same
// ConnectionStrings__sentryvibe whichever is used.
using Aspire.Hosting.ApplicationModel;

namespace SentryVibe.LocalPostgres;

/// <summary>A <c>postgres</c> process started from the machine's binaries (run as an unprivileged user when root).</summary>
public sealed class LocalPostgresServerResource(string name, string command, string workingDirectory, PostgresCluster cluster, ParameterResource password)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public const string EndpointName = "tcp";

    public PostgresCluster Cluster { get; } = cluster;

    /// <summary>The superuser's password (from <see cref="PostgresCluster.PasswordFile"/>), a secret parameter so the dashboard masks it.</summary>
    public ParameterResource Password { get; } = password;

    public EndpointReference PrimaryEndpoint => new(this, EndpointName);

    // The server listens on 127.0.0.1 only; "localhost" could resolve to ::1 first.
    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"Host=127.0.0.1;Port={PrimaryEndpoint.Property(EndpointProperty.Port)};Username={PostgresCluster.SuperUser};Password={Password}");
}

/// <summary>One database of a <see cref="LocalPostgresServerResource"/>; created by its health check when missing.</summary>
public sealed class LocalPostgresDatabaseResource(string name, string databaseName, LocalPostgresServerResource parent)
    : Resource(name), IResourceWithParent<LocalPostgresServerResource>, IResourceWithConnectionString
{
    public LocalPostgresServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{Parent};Database={DatabaseName}");
}
