// The system diagram: Postgres → Web (owns and migrates the schema) → Broker (runner links, preview relay) → a local Runner.
using SentryVibe.AppHost;
using SentryVibe.AppHost.Contract;
using SentryVibe.LocalPostgres;

var builder = DistributedApplication.CreateBuilder(args);
var home = SentryVibeHome.Load(builder.Configuration, createSecrets: !builder.ExecutionContext.IsPublishMode);

var apiToken = builder.AddSecret("api-token", home.ApiToken);
var runnerSecret = builder.AddSecret("runner-shared-secret", home.RunnerSharedSecret);

var db = builder.AddSentryVibePostgres(home.PostgresDataDirectory);

// Errors and traces to Sentry as well when a DSN is given (a deployment sets it on each service instead).
var sentryDsn = builder.ExecutionContext.IsRunMode ? builder.Configuration["SENTRY_DSN"] : null;

var web = builder.AddService<Projects.SentryVibe_Web>("web", home.WebPort)
    .WithReference(db).WaitFor(db)
    .WithEnvironment("SentryVibe__ApiToken", apiToken)
    .WithEnvironment("SentryVibe__PreviewDomain", home.PreviewDomain)
    .WithEnvironment("SentryVibe__DefaultRunnerId", SentryVibeHome.LocalRunnerId)
    .WithEnvironmentIfSet("SENTRY_DSN", sentryDsn);

var broker = builder.AddService<Projects.SentryVibe_Broker>("broker", home.BrokerPort)
    .WithReference(db).WaitFor(web) // Web applies the migrations the Broker relies on.
    .WithEnvironment("RUNNER_SHARED_SECRET", runnerSecret)
    .WithEnvironment("Broker__PreviewDomain", home.PreviewDomain)
    .WithEnvironmentIfSet("SENTRY_DSN", sentryDsn);

// The runner command the UI shows next to a new runner token.
web.WithEnvironment("SentryVibe__BrokerUrl", ReferenceExpression.Create($"ws://{broker.GetEndpoint("http").Property(EndpointProperty.HostAndPort)}/runner"));

var runner = builder.AddService<Projects.SentryVibe_Runner>("runner", home.RunnerHealthPort, healthPortVariable: "HEALTH_PORT")
    .WithArgs("run")
    .WithEnvironment("RUNNER_BROKER_URL", ReferenceExpression.Create($"ws://{broker.GetEndpoint("http").Property(EndpointProperty.HostAndPort)}/runner"))
    .WithEnvironment("RUNNER_SHARED_SECRET", runnerSecret)
    .WithEnvironment("RUNNER_ID", SentryVibeHome.LocalRunnerId)
    .WithEnvironment("SENTRYVIBE_HOME", home.Directory)
    .WithEnvironmentIfSet("WORKSPACE_ROOT", home.WorkspaceRoot)
    .WithEnvironmentIfSet("SENTRY_DSN", sentryDsn)
    .WaitFor(broker)
    .ExcludeFromManifest(); // Runners live on users' machines; only Web, Broker and Postgres are deployed.

builder.AddContractFile(home, db, web, broker, runner);

builder.Build().Run();
