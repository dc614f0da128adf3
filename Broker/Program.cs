using SentryVibe.Broker;
using SentryVibe.Broker.Link;
using SentryVibe.Broker.Previews;
using SentryVibe.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddSentryVibeDataSource();
builder.AddRunnerLink();
builder.AddPreviewRelay();
builder.Services.AddHostedService<IdleMemoryTrim>();

var app = builder.Build();

app.UsePreviewRelay();

app.MapRunnerLink();
app.MapPreviewSockets();
app.MapDefaultEndpoints();

app.Run();
