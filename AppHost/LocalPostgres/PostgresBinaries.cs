using CliWrap;
using CliWrap.Buffered;

namespace SentryVibe.LocalPostgres;

/// <summary>Where the PostgreSQL server binaries are, and as whom they must run.</summary>
public sealed record PostgresBinaries(string BinDirectory, string? RunAsUser)
{
    public string InitDb => Path.Combine(BinDirectory, "initdb");
    public string Postgres => Path.Combine(BinDirectory, "postgres");
    public string PgCtl => Path.Combine(BinDirectory, "pg_ctl");

    public const string InstallHint =
        "PostgreSQL server binaries (initdb, postgres) were not found on PATH or in /usr/lib/postgresql/*/bin, and no container runtime is available: " +
        "install them (Debian/Ubuntu: `sudo apt-get install postgresql`; macOS: `brew install postgresql@16`) or install Docker/Podman, " +
        "or set ConnectionStrings__sentryvibe to an existing database.";

    /// <summary>Finds <c>initdb</c> and <c>postgres</c> on PATH or in the newest /usr/lib/postgresql/*/bin; null when absent.</summary>
    public static PostgresBinaries? Find()
    {
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql")
                    .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                    .Select(d => Path.Combine(d, "bin"))
                : []);

        foreach (var dir in candidates)
        {
            if (File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "postgres")))
            {
                // A PATH entry may hold wrappers (Debian's pg_wrapper): prefer the real binaries behind a symlink.
                var real = new FileInfo(Path.Combine(dir, "postgres")).ResolveLinkTarget(returnFinalTarget: true);
                var binDir = real is not null ? Path.GetDirectoryName(real.FullName)! : dir;
                if (!File.Exists(Path.Combine(binDir, "initdb"))) binDir = dir;
                return new PostgresBinaries(binDir, IsRoot ? UnprivilegedUser() : null);
            }
        }
        return null;
    }

    public static bool IsRoot => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? Environment.UserName == "root" || GetEuid() == 0 : false;

    private static uint GetEuid()
    {
        try
        {
            var status = File.ReadAllLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return status is null ? uint.MaxValue : uint.Parse(status.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2]);
        }
        catch (IOException) { return uint.MaxValue; }
    }

    /// <summary>PostgreSQL refuses to run as root; these machines run everything as root, so the server runs as this user.</summary>
    private static string UnprivilegedUser()
    {
        var passwd = File.Exists("/etc/passwd") ? File.ReadAllLines("/etc/passwd") : [];
        if (passwd.Any(l => l.StartsWith("postgres:", StringComparison.Ordinal))) return "postgres";
        if (passwd.Any(l => l.StartsWith("sentryvibe:", StringComparison.Ordinal))) return "sentryvibe";
        var result = Cli.Wrap("useradd").WithArguments(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "sentryvibe"])
            .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync().GetAwaiter().GetResult();
        return result.IsSuccess ? "sentryvibe" : throw new InvalidOperationException(
            $"Running as root and no unprivileged user exists for PostgreSQL; useradd failed: {result.StandardError.Trim()}");
    }

    /// <summary>The command line that runs <paramref name="program"/> as <see cref="RunAsUser"/> (or directly when not root).</summary>
    public (string FileName, IReadOnlyList<string> Arguments) AsServiceUser(string program, IEnumerable<string> arguments) =>
        RunAsUser is null
            ? (program, arguments.ToList())
            // setpriv execs in place (no fork): the process we start is the server itself, so signals reach it
            // and its exit is reaped by us, not left as a zombie holding postmaster.pid.
            : ("setpriv", ["--reuid", RunAsUser, "--regid", RunAsUser, "--init-groups", "--", program, .. arguments]);
}
