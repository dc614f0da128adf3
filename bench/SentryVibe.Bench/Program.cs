using SentryVibe.Bench;

// `all` (the default) runs every scenario in one process and prints one table; a single scenario prints its own.
var scenario = args.FirstOrDefault() ?? "all";
var rest = args.Skip(1).ToArray();
switch (scenario)
{
    case "link":
        Report.Print("link scenario", await LinkScenario.RunAsync(rest));
        return 0;
    case "idle":
        Report.Print("idle links scenario", await LinkScenario.RunIdleAsync(rest));
        return 0;
    case "events":
        Report.Print("events scenario", await EventsScenario.RunAsync(rest));
        return 0;
    case "relay":
        Report.Print("relay scenario", await RelayScenario.RunAsync(rest));
        return 0;
    case "preview":
        Report.Print("preview scenario", await PreviewScenario.RunAsync(rest));
        return 0;
    case "firstpaint":
        Report.Print("first paint scenario", await FirstPaintScenario.RunAsync(rest));
        return 0;
    case "all":
        var figures = new List<Figure>();
        figures.AddRange(await LinkScenario.RunAsync(rest));
        figures.AddRange(await RelayScenario.RunAsync([]));
        figures.AddRange(await PreviewScenario.RunAsync([]));
        figures.AddRange(await FirstPaintScenario.RunAsync([]));
        Report.Print("SentryVibe benchmarks: link, relay, preview, first paint", figures);
        return 0;
    default:
        Console.Error.WriteLine($"Unknown scenario '{scenario}'. Scenarios: all (default), link, events, relay, preview, firstpaint");
        return 1;
}
