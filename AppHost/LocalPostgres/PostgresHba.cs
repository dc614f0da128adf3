namespace SentryVibe.LocalPostgres;

/// <summary>Reading and rewriting pg_hba.conf: which lines let anyone in without a password.</summary>
public static class PostgresHba
{
    /// <summary>True when any rule (not a comment) uses the <c>trust</c> method.</summary>
    public static bool TrustsAnyone(string hba) => hba.Split('\n').Any(line => MethodIndex(line) is { } i && Fields(line)[i] == "trust");

    /// <summary>Every <c>trust</c> rule becomes <c>scram-sha-256</c>; comments and other rules stay as they were.</summary>
    public static string RequirePasswords(string hba) => string.Join('\n', hba.Split('\n').Select(line =>
        MethodIndex(line) is { } i && Fields(line)[i] == "trust"
            ? System.Text.RegularExpressions.Regex.Replace(line, @"(?<=\s)trust(?=\s|$)", "scram-sha-256")
            : line));

    private static string[] Fields(string line) => line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);

    // local DATABASE USER METHOD; host* DATABASE USER ADDRESS METHOD (ADDRESS may be "addr mask", then one more).
    private static int? MethodIndex(string line)
    {
        var code = line.Split('#')[0];
        var f = Fields(code);
        if (f.Length == 0) return null;
        var index = f[0] == "local" ? 3 : f[0].StartsWith("host", StringComparison.Ordinal) ? 4 : -1;
        if (index < 0 || f.Length <= index) return null;
        // "host all all 127.0.0.1 255.255.255.255 trust": the mask takes a field.
        if (f[0] != "local" && System.Net.IPAddress.TryParse(f[index], out _) && f.Length > index + 1) index++;
        return index;
    }
}
