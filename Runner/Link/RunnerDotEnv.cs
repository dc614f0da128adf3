using dotenv.net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;

namespace SentryVibe.Runner.Link;

/// <summary>
/// The <c>.env</c> file in the runner's working folder, read as the original runner read it: KEY=VALUE lines,
/// <c>#</c> comments, optional quotes, an optional <c>export </c> prefix. It is the lowest layer of configuration, so
/// real environment variables (and flags) win over it. Its values are never logged: it usually holds a secret.
/// </summary>
public static class RunnerDotEnv
{
    public const string FileName = ".env";
    private const string Export = "export ";

    public static Dictionary<string, string?> Read(string directory)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return values;
        var options = new DotEnvOptions(envFilePaths: [path], trimValues: true, probeForEnv: false, ignoreExceptions: false);
        IDictionary<string, string> read;
        try
        {
            read = DotEnv.Read(options);
        }
        catch (ArgumentException e)
        {
            // The parser names the variable, never its value.
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        foreach (var (key, value) in read)
        {
            var name = key.StartsWith(Export, StringComparison.Ordinal) ? key[Export.Length..].Trim() : key.Trim();
            // As in the environment: Runner__Token names Runner:Token.
            values[name.Replace("__", ConfigurationPath.KeyDelimiter)] = value;
        }
        return values;
    }

    /// <summary>Lays the working folder's .env under every other source of <paramref name="builder"/>; a malformed file throws <see cref="InvalidDataException"/>.</summary>
    public static IConfigurationBuilder AddRunnerDotEnv(this IConfigurationBuilder builder, string directory)
    {
        builder.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Read(directory) });
        return builder;
    }

    /// <summary>The environment as the runner's verbs see it: real variables over the working folder's .env.</summary>
    public static IConfiguration Environment() =>
        new ConfigurationBuilder().AddRunnerDotEnv(Directory.GetCurrentDirectory()).AddEnvironmentVariables().Build();
}
