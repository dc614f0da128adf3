// Secrets a runner typically has in its environment (its own token, another agent's key, the Sentry DSN, anything
// else of the user's), planted in the test process so the processes a runner starts would inherit them if nothing
// stopped it. Harmless to tests running alongside: no test reads these names.
namespace SentryVibe.Testing;

public static class PlantedSecrets
{
    public static readonly IReadOnlyDictionary<string, string> Values = new Dictionary<string, string>
    {
        ["RUNNER_SHARED_SECRET"] = "planted-runner-secret-7f3a",
        ["OPENAI_API_KEY"] = "sk-planted-openai-9c1d",
        ["SENTRY_DSN"] = "http://planted-dsn@127.0.0.1:9/1",
        ["SOME_SECRET"] = "planted-some-secret-42b8",
    };

    /// <summary>Sets the secrets in this process's environment (idempotent).</summary>
    public static void Plant()
    {
        foreach (var (name, value) in Values)
        {
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    /// <summary>Which planted names or values appear in <paramref name="text"/> (an <c>env</c> listing).</summary>
    public static IReadOnlyList<string> FoundIn(string text) =>
        Values.Where(kv => text.Contains(kv.Key + "=", StringComparison.Ordinal) || text.Contains(kv.Value, StringComparison.Ordinal))
            .Select(kv => kv.Key)
            .ToList();
}
