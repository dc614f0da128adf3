// One row of the printed table: a figure next to its same-run baseline, the ratio between them, the target and
// whether it was met. Figures are reported, never asserted.
using System.Globalization;

namespace SentryVibe.Bench;

public sealed record Figure(string Name, string Value, string Baseline, string Ratio, string Target, bool? Met)
{
    public string Verdict => Met switch { true => "met", false => "missed", null => "—" };
}

public static class Report
{
    public static string Ratio(double value, double baseline) =>
        double.IsFinite(value / baseline) ? (value / baseline).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "—";

    public static void Print(string title, IEnumerable<Figure> figures)
    {
        Console.WriteLine();
        Console.WriteLine($"### {title} ({Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd})");
        Console.WriteLine();
        Console.WriteLine("| Figure | Measured | Baseline (same run) | Ratio | Target | Verdict |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var f in figures) Console.WriteLine($"| {f.Name} | {f.Value} | {f.Baseline} | {f.Ratio} | {f.Target} | {f.Verdict} |");
    }

    /// <summary>
    /// Where a curve bends (issue 16.6): of its consecutive steps, the pair across which the value gets worse by the
    /// largest factor — a rate falling, a latency or a cost rising. Null when no step makes it 1.2× worse or more: less
    /// is within a run's noise here.
    /// </summary>
    public static int? Bend(IReadOnlyList<double> values, bool lowerIsWorse)
    {
        int? at = null;
        var worst = 1.2;
        for (var i = 1; i < values.Count; i++)
        {
            var factor = lowerIsWorse ? values[i - 1] / values[i] : values[i] / values[i - 1];
            if (double.IsFinite(factor) && factor > worst) (worst, at) = (factor, i);
        }
        return at;
    }

    /// <summary>Of named growths, the largest first and the others after it: "broker +1.2 µs (Postgres +0.3, …)".</summary>
    public static string Largest(string unit, params (string Name, double Growth)[] parts)
    {
        var ordered = parts.OrderByDescending(p => p.Growth).ToArray();
        var rest = string.Join(", ", ordered.Skip(1).Select(p => $"{p.Name} {Signed(p.Growth)}"));
        return $"{ordered[0].Name} {Signed(ordered[0].Growth)} {unit}" + (rest.Length > 0 ? $" ({rest})" : "");
    }

    private static string Signed(double value) => Math.Round(value, 1) is var rounded && rounded == 0
        ? "±0.0"
        : rounded.ToString("+0.0;-0.0", CultureInfo.InvariantCulture);

    public static (double P50, double P99) Percentiles(IReadOnlyCollection<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return (double.NaN, double.NaN);
        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return (At(0.50), At(0.99));
    }
}
