using System.CommandLine;
using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.Configuration;
using SentryVibe.Runner.Link;
using Spectre.Console;

namespace SentryVibe.Runner.Verbs;

/// <summary><c>login</c>: checks the token against the broker and stores URL and token for later runs.</summary>
public static class LoginCommand
{
    public static Command Create()
    {
        var broker = new Option<string>("--broker") { Description = "Broker URL, e.g. wss://broker.example.com.", Required = true };
        var token = new Option<string>("--token") { Description = "A runner token from the web UI (or the shared secret).", Required = true };
        var id = new Option<string?>("--id") { Description = "Runner id to use from now on." };
        var json = RunnerCli.JsonOption();
        var command = new Command("login", "Store the broker URL and runner token in $SENTRYVIBE_HOME/runner.json.") { broker, token, id, json };
        command.SetAction((parse, ct) => LoginAsync(parse.GetValue(broker)!, parse.GetValue(token)!, parse.GetValue(id), parse.GetValue(json), ct));
        return command;
    }

    private static async Task<int> LoginAsync(string brokerUrl, string token, string? id, bool json, CancellationToken cancellationToken)
    {
        Uri uri;
        try { uri = LinkAddress.Normalize(brokerUrl); }
        catch (ArgumentException e) { Report.Error(json, e.Message); return 1; }

        var check = await CheckAsync(uri, token, cancellationToken);
        if (check == HttpStatusCode.Unauthorized)
        {
            Report.Error(json, $"The broker at {uri} refused this token.");
            return 1;
        }

        string home;
        try { home = RunnerPaths.Home(RunnerDotEnv.Environment()); }
        catch (InvalidDataException e) { Report.Error(json, e.Message); return 1; }
        var path = new LoginSettings(uri.ToString(), token, id).Save(home);
        var reachable = check is HttpStatusCode.SwitchingProtocols;
        if (json)
        {
            Console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { saved = path, broker = uri.ToString(), verified = reachable }));
        }
        else
        {
            AnsiConsole.MarkupLineInterpolated($"[green]Saved[/] {path}");
            if (!reachable) AnsiConsole.MarkupLineInterpolated($"[yellow]Could not reach {uri} to check the token; it is saved anyway.[/]");
            AnsiConsole.MarkupLine("Start the runner with [bold]sentryvibe-runner run[/].");
        }
        return 0;
    }

    /// <summary>Opens and closes a link to see whether the token is accepted; null when the broker is unreachable.</summary>
    private static async Task<HttpStatusCode?> CheckAsync(Uri uri, string token, CancellationToken cancellationToken)
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        socket.Options.CollectHttpResponseDetails = true;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await socket.ConnectAsync(uri, timeout.Token);
            socket.Abort();
            return HttpStatusCode.SwitchingProtocols;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException)
        {
            return socket.HttpStatusCode == 0 ? null : socket.HttpStatusCode;
        }
    }
}
