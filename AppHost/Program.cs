var builder = DistributedApplication.CreateBuilder(args);
var web = builder.AddProject<Projects.SentryVibe_Web>("web");
builder.Build().Run();
