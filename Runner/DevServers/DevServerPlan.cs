// What a dev-server start will run: the install (when node_modules is missing) and the run command with the port.
// `npm run dev` whose script is one plain command of an installed binary runs that binary itself (docs/architecture.md,
// "Starting a dev server"): npm's own start-up is ~270 ms of every start and restart.
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Processes;

namespace SentryVibe.Runner.DevServers;

internal sealed record PlannedCommand(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment)
{
    public string Display => string.Join(' ', Arguments.Select(Quote).Prepend(Program));

    private static string Quote(string a) => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"\"{a}\"" : a;
}

internal sealed record DevServerPlan(PlannedCommand? Install, CommandLine Run, IReadOnlyList<string> PortArgument, string ProjectPath = "")
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
        // Looked at when it runs, not when planned: node_modules/.bin is there only after the install.
        var direct = Direct(ProjectPath, Run);
        if ((direct is not null || Run.Arguments.Contains("--")) && PortArgument.FirstOrDefault() == "--")
        {
            portArgs = portArgs.Skip(1); // npm's "--" only hands what follows to the script
        }
        var run = direct ?? Run;
        return new PlannedCommand(run.Program, run.Arguments.Concat(portArgs).ToList(), run.Environment);
    }

    /// <summary>
    /// <c>npm run &lt;script&gt;</c> (or <c>npm start</c>) whose script is one plain command of a binary in
    /// node_modules/.bin ("vite", "astro dev"), as that binary with the script's arguments, what followed "--", and
    /// node_modules/.bin first on PATH as npm would put it. Null (npm runs it) for anything else: other package
    /// managers, pre/post scripts, shell syntax in the script, a program that is not an installed binary, Windows.
    /// </summary>
    private static readonly System.Buffers.SearchValues<char> ShellExpansions = System.Buffers.SearchValues.Create("$*?[]{}~#`");

    internal static CommandLine? Direct(string projectPath, CommandLine run)
    {
        if (OperatingSystem.IsWindows() || projectPath.Length == 0 || run.Program != "npm" || run.Environment.Count > 0)
        {
            return null;
        }
        var args = run.Arguments;
        var (script, rest) = args.Count >= 2 && args[0] is "run" or "run-script" ? (args[1], args.Skip(2).ToList())
            : args.Count >= 1 && args[0] == "start" ? ("start", args.Skip(1).ToList())
            : ((string?)null, []);
        if (script is null || (rest.Count > 0 && rest[0] != "--"))
        {
            return null;
        }
        var scripts = PackageJson.Scripts(projectPath);
        if (!scripts.TryGetValue(script, out var text) || scripts.ContainsKey("pre" + script) || scripts.ContainsKey("post" + script))
        {
            return null;
        }
        if (text.AsSpan().IndexOfAny(ShellExpansions) >= 0)
        {
            return null; // $VAR, globs, ~, comments: only a shell gives them their meaning
        }
        CommandLine parsed;
        try
        {
            parsed = CommandLine.Parse(text);
        }
        catch (FormatException)
        {
            return null; // pipes, &&, substitutions: npm's shell has to run it
        }
        var bin = Path.Combine(projectPath, "node_modules", ".bin");
        var program = Path.Combine(bin, parsed.Program);
        if (parsed.Program.Contains('/') || parsed.Program.Contains('\\') || !File.Exists(program))
        {
            return null;
        }
        var environment = new Dictionary<string, string>(parsed.Environment, StringComparer.Ordinal)
        {
            ["PATH"] = bin + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
        };
        return new CommandLine(program, parsed.Arguments.Concat(rest.Skip(1)).ToList(), environment);
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
            return new DevServerPlan(install, run, portArgument, location.Path);
        }
        catch (FormatException ex)
        {
            throw new DevServerException(ex.Message, ex);
        }
    }
}
