// Usage: exit-probe <bare|host> <node script> — starts the script under a ProcessSupervisor, prints "ready <pid>",
// then waits to be signalled. "host" runs the supervisor as a hosted service of a generic host, like the runner.
using CliWrap;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;

var mode = args[0];
var script = args[1];

if (mode == "host")
{
    var builder = Host.CreateApplicationBuilder();
    builder.Services.AddSingleton(_ => new ProcessSupervisor());
    builder.Services.AddHostedService(sp => sp.GetRequiredService<ProcessSupervisor>());
    using var host = builder.Build();
    await host.StartAsync();
    Launch(host.Services.GetRequiredService<ProcessSupervisor>());
    await host.WaitForShutdownAsync();
}
else
{
    Launch(new ProcessSupervisor());
    await Task.Delay(Timeout.Infinite);
}

void Launch(ProcessSupervisor supervisor)
{
    var process = supervisor.Start("probe", null, Cli.Wrap("node").WithArguments([script])
        .WithStandardOutputPipe(PipeTarget.ToDelegate(line => Console.WriteLine(line))));
    Console.WriteLine($"ready {process.ProcessId}");
}
