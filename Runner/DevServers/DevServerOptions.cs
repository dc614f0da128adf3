namespace SentryVibe.Runner.DevServers;

/// <summary>Dev server behaviour; bound from the "DevServers" configuration section.</summary>
public sealed class DevServerOptions
{
    public const string SectionName = "DevServers";

    /// <summary>Output lines per second that become dev-server-log events; the rest are summarised.</summary>
    public int MaxLogLinesPerSecond { get; set; } = 40;

    /// <summary>How many of the last output lines a dev-server-exited event carries.</summary>
    public int LastLines { get; set; } = 30;

    /// <summary>Use the template's default port when it is free (stable local URLs); otherwise any free port.</summary>
    public bool PreferDefaultPort { get; set; } = true;

    /// <summary>Runs first when the project has a package.json but no node_modules.</summary>
    public string InstallCommand { get; set; } = "npm install --no-audit --no-fund";

    /// <summary>
    /// Where copies of successful installs are kept, keyed by package.json and lockfiles, so a new project from a
    /// known template starts without installing. Empty turns the cache off. Default
    /// <c>$SENTRYVIBE_HOME/cache/node_modules</c>.
    /// </summary>
    public string? InstallCacheDirectory { get; set; }

    /// <summary>How many different installs the cache keeps (least recently used go first).</summary>
    public int InstallCacheEntries { get; set; } = 6;

    /// <summary>Time a dev server gets to exit after SIGINT before its process tree is killed.</summary>
    public TimeSpan StopGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>After this long without a listening port, the log says what the runner is waiting for.</summary>
    public TimeSpan SlowStartNotice { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Where the runner notes which dev servers run, so that after a crash of the runner their projects hear that
    /// they stopped. Null: not noted.
    /// </summary>
    public string? StateDirectory { get; set; }
}

/// <summary>A dev server request the runner refuses, with the reason the user sees.</summary>
public sealed class DevServerException(string message, Exception? inner = null) : Exception(message, inner);
