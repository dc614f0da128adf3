<<<<<<< HEAD
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;

var builder = WebApplication.CreateSlimBuilder(args);
builder.AddServiceDefaults();
// /health for the AppHost's probe, on the port it hands out (stub until the runner link lands).
if (builder.Configuration["HEALTH_PORT"] is { Length: > 0 } healthPort) builder.WebHost.UseUrls($"http://localhost:{healthPort}");
var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
=======
using SentryVibe.Runner.Cli;

return await RunnerCli.Create().Parse(args).InvokeAsync();
>>>>>>> link
