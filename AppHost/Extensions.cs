// Small helpers that keep Program.cs a diagram.
using System.Diagnostics.CodeAnalysis;

namespace SentryVibe.AppHost;

public static class AppHostExtensions
{
    /// <summary>
    /// A .NET service on a fixed loopback port (no proxy: the port users see is the one it listens on), health
    /// checked on <c>/health</c>. Launch profiles are ignored so no service ever asks for a dev certificate.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddService<TProject>(this IDistributedApplicationBuilder builder, string name, int port,
        string? healthPortVariable = null) where TProject : IProjectMetadata, new()
    {
        var service = builder.AddProject<TProject>(name, options => options.ExcludeLaunchProfile = true)
            .WithEnvironment("ASPNETCORE_ENVIRONMENT", builder.Environment.EnvironmentName)
            .WithEnvironment("DOTNET_ENVIRONMENT", builder.Environment.EnvironmentName);
        service = builder.ExecutionContext.IsPublishMode
            // Railway and friends give the port in PORT; the service binds where it is told.
            ? service.WithHttpEndpoint(env: healthPortVariable ?? "PORT").WithExternalHttpEndpoints()
            : service.WithHttpEndpoint(port: port, targetPort: port, env: healthPortVariable, isProxied: false);
        if (builder.ExecutionContext.IsRunMode)
        {
            // Aspire turns on the OTLP exporter's in-memory retry. On Ctrl+C the dashboard stops first, so each
            // service's last flush (traces, metrics, logs: up to 5 s each while the host is disposed) kept retrying
            // a closed port until DCP killed it (docs/operations.md, "Stopping"). Without retry a failed export is dropped at once.
            service = service.WithEnvironment(context => context.EnvironmentVariables.Remove("OTEL_DOTNET_EXPERIMENTAL_OTLP_RETRY"));
        }
        return service.WithHttpHealthCheck("/health");
    }

    /// <summary>A secret parameter: the value made in $SENTRYVIBE_HOME when running, asked of the deployment when publishing.</summary>
    public static IResourceBuilder<ParameterResource> AddSecret(this IDistributedApplicationBuilder builder, string name, string value) =>
        builder.ExecutionContext.IsPublishMode
            ? builder.AddParameter(name, secret: true)
            : builder.AddParameter(name, value, publishValueAsDefault: false, secret: true);

    public static IResourceBuilder<T> WithEnvironmentIfSet<T>(this IResourceBuilder<T> builder, string name, [NotNullWhen(true)] string? value)
        where T : IResourceWithEnvironment =>
        value is null ? builder : builder.WithEnvironment(name, value);
}
