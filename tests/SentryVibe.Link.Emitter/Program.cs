// Usage: emitter --broker <url> --token <t> --id <runnerId> --home <dir> [--count N] [--rate perSecond] [--project <guid>]
// Publishes events 1..count through the runner's real outbox and link (continuing after a restart from the outbox's
// seq), printing "emitted N" / "acked N" lines, then stays linked until killed.
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Link;

var options = args.Chunk(2).Where(p => p.Length == 2).ToDictionary(p => p[0].TrimStart('-'), p => p[1]);
var count = long.Parse(options.GetValueOrDefault("count", "0"), System.Globalization.CultureInfo.InvariantCulture);
var rate = int.Parse(options.GetValueOrDefault("rate", "1000"), System.Globalization.CultureInfo.InvariantCulture);
var project = Guid.Parse(options.GetValueOrDefault("project", Guid.Empty.ToString()));

var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("SentryVibe", LogLevel.Information);
builder.Logging.AddSimpleConsole(o => { o.TimestampFormat = "HH:mm:ss.fff "; o.SingleLine = true; });
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Runner:BrokerUrl"] = options["broker"],
    ["Runner:Token"] = options["token"],
    ["Runner:Id"] = options["id"],
    ["Runner:Home"] = options["home"],
});
builder.Services.AddRunnerLink();
builder.Services.AddRunnerWork(builder.Configuration);
using var host = builder.Build();
await host.StartAsync();

var outbox = host.Services.GetRequiredService<EventOutbox>();
var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
Console.WriteLine($"started at seq {outbox.LastSeq}");

// Paced in 10 ms ticks; each publish is awaited (durable) before the next seq is counted.
var clock = Stopwatch.StartNew();
var emittedAtStart = outbox.LastSeq;
var lastReport = outbox.LastSeq;
while (outbox.LastSeq < count && !lifetime.ApplicationStopping.IsCancellationRequested)
{
    var due = emittedAtStart + (long)(clock.Elapsed.TotalSeconds * rate);
    if (outbox.LastSeq >= due)
    {
        await Task.Delay(10);
        continue;
    }
    var burst = (int)Math.Min(Math.Min(due, count) - outbox.LastSeq, 500);
    var writes = new ValueTask[burst];
    for (var i = 0; i < burst; i++) writes[i] = outbox.PublishAsync(project == Guid.Empty ? null : project, new BuildLog($"line {outbox.LastSeq + i + 1}"));
    foreach (var w in writes) await w;
    if (outbox.LastSeq - lastReport >= 250)
    {
        lastReport = outbox.LastSeq;
        Console.WriteLine($"emitted {outbox.LastSeq}");
    }
}
Console.WriteLine($"emitted {outbox.LastSeq}");

while (!lifetime.ApplicationStopping.IsCancellationRequested)
{
    if (count > 0 && outbox.AckedSeq >= count)
    {
        Console.WriteLine($"acked {outbox.AckedSeq}");
        count = 0;
    }
    await Task.Delay(100);
}
await host.StopAsync();
