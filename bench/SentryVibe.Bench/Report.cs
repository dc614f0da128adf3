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

    public static (double P50, double P99) Percentiles(IReadOnlyCollection<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return (double.NaN, double.NaN);
        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return (At(0.50), At(0.99));
    }
}
