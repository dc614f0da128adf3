using SentryVibe.Broker.Link;
using SentryVibe.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddSentryVibeDb();
builder.AddRunnerLink();

var app = builder.Build();

app.MapRunnerLink();
app.MapDefaultEndpoints();

app.Run();
