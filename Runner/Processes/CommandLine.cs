// Turns a manifest's run command ("npm run dev", "-- --port {port}") into argv without a shell in between.
using System.Text;

namespace SentryVibe.Runner.Processes;

/// <summary>A program, its arguments and leading <c>NAME=value</c> assignments, as a shell would split them.</summary>
public sealed record CommandLine(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>
    /// Splits on whitespace honouring '…', "…" and backslash escapes. Shell operators (pipes, redirections, &amp;&amp;, ;,
    /// substitutions) are refused: the command runs without a shell, and a silent half-run would be worse.
    /// </summary>
    public static CommandLine Parse(string commandLine)
    {
        var tokens = Split(commandLine);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        for (; i < tokens.Count && IsAssignment(tokens[i]); i++)
        {
            var eq = tokens[i].IndexOf('=');
            environment[tokens[i][..eq]] = tokens[i][(eq + 1)..];
        }
        if (i == tokens.Count)
        {
            throw new FormatException($"The command '{commandLine}' names no program.");
        }
        return new CommandLine(tokens[i], tokens.Skip(i + 1).ToList(), environment);
    }

    public static IReadOnlyList<string> Split(string text)
    {
        var tokens = new List<string>();
        var current = new StringBuilder();
        var inToken = false;
        char? quote = null;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote is not null)
            {
                if (c == quote)
                {
                    quote = null;
                }
                else if (c == '\\' && quote == '"' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$' or '`')
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '\'' or '"':
                    quote = c;
                    inToken = true;
                    break;
                case '\\' when i + 1 < text.Length:
                    current.Append(text[++i]);
                    inToken = true;
                    break;
                case '|' or '&' or ';' or '<' or '>' or '`' or '(' or ')':
                case '$' when i + 1 < text.Length && text[i + 1] == '(':
                    throw new FormatException(
                        $"The command '{text}' uses the shell operator '{c}'. Commands run without a shell; " +
                        "put multi-step logic in a package.json script and run that.");
                case var _ when char.IsWhiteSpace(c):
                    if (inToken)
                    {
                        tokens.Add(current.ToString());
                        current.Clear();
                        inToken = false;
                    }
                    break;
                default:
                    current.Append(c);
                    inToken = true;
                    break;
            }
        }
        if (quote is not null)
        {
            throw new FormatException($"The command '{text}' has an unclosed {quote} quote.");
        }
        if (inToken)
        {
            tokens.Add(current.ToString());
        }
        return tokens;
    }

    private static bool IsAssignment(string token)
    {
        var eq = token.IndexOf('=');
        return eq > 0 && token[..eq].All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_') && !char.IsAsciiDigit(token[0]);
    }
}
