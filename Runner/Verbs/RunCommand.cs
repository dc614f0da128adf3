using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SentryVibe.Runner.Link;
using Spectre.Console;

namespace SentryVibe.Runner.Verbs;

/// <summary><c>run</c>: a long-running process (under Aspire too) with /health and /alive, linked to the broker.</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var broker = new Option<string?>("--broker") { Description = "Broker URL, e.g. wss://broker.example.com (env RUNNER_BROKER_URL)." };
        var token = new Option<string?>("--token") { Description = "Runner token or shared secret (env RUNNER_SHARED_SECRET)." };
        var workspace = new Option<string?>("--workspace") { Description = "Folder projects are created in (env WORKSPACE_ROOT; the flag wins)." };
        var id = new Option<string?>("--id") { Description = "This runner's id (env RUNNER_ID; default the host name)." };
        var name = new Option<string?>("--name") { Description = "Display name shown in the web UI." };
        var json = RunnerCli.JsonOption();

        var command = new Command("run", "Connect to the broker and build projects on this machine.") { broker, token, workspace, id, name, json };
        command.SetAction((parse, ct) => RunAsync(new RunnerOptions
        {
            BrokerUrl = parse.GetValue(broker),
            Token = parse.GetValue(token),
            Workspace = parse.GetValue(workspace),
            Id = parse.GetValue(id),
            Name = parse.GetValue(name),
        }, parse.GetValue(json), ct));
        return command;
    }

    private static async Task<int> RunAsync(RunnerOptions commandLine, bool json, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        try
        {
            builder.Configuration.AddRunnerSettings(commandLine, Directory.GetCurrentDirectory());
        }
        catch (InvalidDataException e)
        {
            Report.Error(json, e.Message);
            return 1;
        }
        var options = builder.Configuration.GetSection(RunnerOptions.Section).Get<RunnerOptions>() ?? new RunnerOptions();
        if (string.IsNullOrWhiteSpace(options.BrokerUrl) || string.IsNullOrWhiteSpace(options.Token))
        {
            Report.Error(json, "No broker or token. Run `sentryvibe-runner login --broker <url> --token <token>`, pass --broker and --token, " +
                "or set RUNNER_BROKER_URL and RUNNER_SHARED_SECRET.");
            return 1;
        }
        if (!SentryVibe.Protocol.RunnerIds.IsValid(options.RunnerId))
        {
            Report.Error(json, $"'{options.RunnerId}' is not a runner id. {SentryVibe.Protocol.RunnerIds.Rule}");
            return 1;
        }
        try
        {
            _ = options.BrokerUri;
        }
        catch (ArgumentException e)
        {
            Report.Error(json, e.Message);
            return 1;
        }

        // The home holds tokens and build events: owner-only, also when an older version made it with looser modes.
        Core.OwnerOnly.Directory(options.HomeDirectory);

        // Health endpoints for Aspire: HEALTH_PORT, or ASPNETCORE_URLS as usual; otherwise a free loopback port.
        if (builder.Configuration["HEALTH_PORT"] is { Length: > 0 } healthPort)
        {
            builder.WebHost.UseUrls($"http://127.0.0.1:{healthPort}");
        }
        else if (string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]) && string.IsNullOrEmpty(builder.Configuration["urls"]))
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        if (json)
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole();
        }

        builder.AddServiceDefaults();
        builder.Services.AddRunnerLink();
        builder.Services.AddRunnerWork(builder.Configuration);

        var app = builder.Build();
        app.MapDefaultEndpoints();

        if (!json)
        {
            AnsiConsole.MarkupLineInterpolated($"[bold]SentryVibe runner[/] [grey]{LinkClient.RunnerVersion}[/] as [green]{options.RunnerId}[/] → {options.BrokerUri}");
            AnsiConsole.MarkupLineInterpolated($"[grey]state in {options.StateDirectory}; Ctrl+C to stop[/]");
        }
        var link = app.Services.GetRequiredService<LinkState>();
        await app.RunAsync(cancellationToken);
        if (link is { State: LinkStates.Refused, LastError: { } refusal })
        {
            // One unwrapped line on stderr, whatever the terminal's width: the reason is what the user acts on.
            if (json) Report.Error(json, refusal);
            else Console.Error.WriteLine($"error: {refusal}");
        }
        return Environment.ExitCode;
    }
}

internal static class Report
{
    public static void Error(bool json, string message)
    {
        if (json) Console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { error = message }));
        else AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {message}");
    }
}
