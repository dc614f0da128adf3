// What a dev-server start will run: the install (when node_modules is missing) and the run command with the port.
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

internal sealed record PlannedCommand(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment)
{
    public string Display => string.Join(' ', Arguments.Select(Quote).Prepend(Program));

    private static string Quote(string a) => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"\"{a}\"" : a;
}

internal sealed record DevServerPlan(PlannedCommand? Install, CommandLine Run, IReadOnlyList<string> PortArgument)
{
    /// <summary>The run command itself carries the chosen port (not only the PORT variable).</summary>
    public bool PassesPort => PortArgument.Any(a => a.Contains("{port}", StringComparison.Ordinal));

    /// <summary>
    /// The run command with the template's port argument ("-- --port {port}") appended; when the run command
    /// already passes "--" through npm, the port argument's own "--" is dropped so the port still reaches the tool.
    /// </summary>
    public PlannedCommand RunWithPort(int port)
    {
        var portArgs = PortArgument.Select(a => a.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        if (Run.Arguments.Contains("--") && PortArgument.FirstOrDefault() == "--")
        {
            portArgs = portArgs.Skip(1);
        }
        return new PlannedCommand(Run.Program, Run.Arguments.Concat(portArgs).ToList(), Run.Environment);
    }

    /// <summary>Throws <see cref="DevServerException"/> when the project has no run command or a command cannot be parsed.</summary>
    public static DevServerPlan For(ProjectLocation location, string installCommand)
    {
        try
        {
            var runCommand = location.RunCommand ?? PackageJson.RunCommand(location.Path)
                ?? throw new DevServerException($"The project at {location.Path} has no run command (and its package.json no dev or start script).");
            var run = CommandLine.Parse(runCommand);
            var portArgument = string.IsNullOrWhiteSpace(location.PortArgument) ? [] : CommandLine.Split(location.PortArgument);

            var needsInstall = File.Exists(Path.Combine(location.Path, "package.json"))
                && !Directory.Exists(Path.Combine(location.Path, "node_modules"));
            PlannedCommand? install = null;
            if (needsInstall)
            {
                var parsed = CommandLine.Parse(installCommand);
                install = new PlannedCommand(parsed.Program, parsed.Arguments, parsed.Environment);
            }
            return new DevServerPlan(install, run, portArgument);
        }
        catch (FormatException ex)
        {
            throw new DevServerException(ex.Message, ex);
        }
    }
}
