using SentryVibe.Bench;

var scenario = args.FirstOrDefault() ?? "link";
switch (scenario)
{
    case "link":
        await LinkScenario.RunAsync(args.Skip(1).ToArray());
        return 0;
    default:
        Console.Error.WriteLine($"Unknown scenario '{scenario}'. Scenarios: link");
        return 1;
}
