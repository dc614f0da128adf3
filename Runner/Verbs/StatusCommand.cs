using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using SentryVibe.Runner.Link;
using Spectre.Console;

namespace SentryVibe.Runner.Verbs;

/// <summary><c>status</c>: reads the status files running runners write; a missing, stale or orphaned one means not running.</summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var json = RunnerCli.JsonOption();
        var command = new Command("status", "Show whether the runner is running, its link and its current builds.") { json };
        command.SetAction(parse => Show(parse.GetValue(json)));
        return command;
    }

    private static int Show(bool json)
    {
        string home;
        try { home = RunnerPaths.Home(RunnerDotEnv.Environment()); }
        catch (InvalidDataException e) { Report.Error(json, e.Message); return 1; }
        var running = Read(home).Where(IsLive).ToList();
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new { running = running.Count > 0, runners = running }, RunnerStatusFile.Json));
            return running.Count > 0 ? 0 : 3;
        }

        if (running.Count == 0)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]The runner is not running[/] [grey](no live status under {home})[/]");
            return 3;
        }

        var table = new Table().AddColumns("Runner", "PID", "Link", "Broker", "Events pending", "Builds");
        foreach (var s in running)
        {
            var link = s.State == LinkStates.Connected ? $"[green]{s.State}[/]" : $"[yellow]{s.State}[/]";
            if (s.LastError is { } error && s.State != LinkStates.Connected) link += $"\n[grey]{Markup.Escape(error)}[/]";
            table.AddRow(Markup.Escape(s.RunnerId), s.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), link,
                Markup.Escape(s.Broker), s.PendingEvents.ToString(System.Globalization.CultureInfo.InvariantCulture),
                s.ActiveBuilds.Count == 0 ? "[grey]none[/]" : string.Join("\n", s.ActiveBuilds));
        }
        AnsiConsole.Write(table);
        // Whether agents' shells are confined, on a line of its own so the reason is never cut.
        foreach (var s in running.Where(s => s.Sandbox is not null))
        {
            var line = Markup.Escape(s.Sandbox!);
            AnsiConsole.MarkupLine(s.Sandbox!.StartsWith("agent not sandboxed", StringComparison.Ordinal)
                ? $"[red]{Markup.Escape(s.RunnerId)}: {line}[/]"
                : $"[grey]{Markup.Escape(s.RunnerId)}:[/] {line}");
        }
        return 0;
    }

    private static IEnumerable<RunnerStatusFile> Read(string home)
    {
        var runners = Path.Combine(home, "runners");
        if (!Directory.Exists(runners)) yield break;
        foreach (var path in Directory.GetFiles(runners, RunnerStatusFile.FileName, SearchOption.AllDirectories))
        {
            RunnerStatusFile? status = null;
            try { status = JsonSerializer.Deserialize<RunnerStatusFile>(File.ReadAllText(path), RunnerStatusFile.Json); }
            catch (Exception e) when (e is JsonException or IOException) { }
            if (status is not null) yield return status;
        }
    }

    private static bool IsLive(RunnerStatusFile status)
    {
        if (DateTimeOffset.UtcNow - status.UpdatedAt > RunnerStatusFile.StaleAfter) return false;
        try
        {
            using var process = Process.GetProcessById(status.Pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
