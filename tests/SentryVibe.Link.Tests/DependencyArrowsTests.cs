using System.Text.RegularExpressions;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>
/// The dependency arrows (docs/architecture.md, "Where the code is"): Web, Broker and Runner lean on Protocol and ServiceDefaults,
/// Web and Broker also on Data; none on another, and Protocol on nothing of ours. A project file reaching into another
/// folder (a reference, or an item such as an embedded file) or a Dockerfile copying one is an arrow.
/// </summary>
public sealed partial class DependencyArrowsTests
{
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Protocol"] = [],
        ["ServiceDefaults"] = [],
        ["Data"] = ["Protocol"],
        ["Web"] = ["Protocol", "ServiceDefaults", "Data"],
        ["Broker"] = ["Protocol", "ServiceDefaults", "Data"],
        ["Runner"] = ["Protocol", "ServiceDefaults"],
    };

    public static TheoryData<string> Projects => [.. Allowed.Keys];

    public static TheoryData<string> Images => ["Web", "Broker"];

    [Theory]
    [MemberData(nameof(Projects))]
    public void A_project_file_reaches_only_the_folders_its_arrows_allow(string project)
    {
        var file = Directory.GetFiles(Path.Combine(Paths.RepoRoot, project), "*.csproj").Single();
        var reached = OutsideFolder().Matches(File.ReadAllText(file)).Select(m => m.Groups["folder"].Value).ToHashSet();

        Assert.Empty(reached.Except(Allowed[project]));
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void A_service_image_copies_and_watches_only_its_own_folder_and_the_folders_its_arrows_allow(string service)
    {
        var copied = File.ReadAllLines(Path.Combine(Paths.RepoRoot, service, "Dockerfile"))
            .Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal))
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1])
            .Where(source => source.Contains('/'))
            .Select(source => source.Split('/')[0])
            .ToHashSet();

        Assert.Contains(service, copied);
        Assert.Empty(copied.Except([service, .. Allowed[service]]));

        // The deployment rebuilds the image when these change: the same folders, no others.
        using var railway = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.RepoRoot, service, "railway.json")));
        var watched = railway.RootElement.GetProperty("build").GetProperty("watchPatterns").EnumerateArray()
            .Select(p => p.GetString()!).Where(p => p.Contains('/')).Select(p => p.Split('/')[0]).ToHashSet();
        Assert.Empty(watched.Except([service, .. Allowed[service]]));
    }

    [Fact]
    public void The_template_catalogue_and_the_runners_template_trees_name_the_same_templates()
    {
        var trees = Directory.GetDirectories(Path.Combine(Paths.RepoRoot, "Runner", "Templates")).Select(Path.GetFileName).Order();
        var manifests = Directory.GetFiles(Path.Combine(Paths.RepoRoot, "Protocol", "Templates"), "*.json").Select(Path.GetFileNameWithoutExtension).Order();

        Assert.Equal(trees, manifests);
        Assert.Equal(manifests, Protocol.TemplateCatalog.BuiltIn.Select(t => t.Id).Order());
        Assert.DoesNotContain(Directory.GetFiles(Path.Combine(Paths.RepoRoot, "Runner", "Templates"), "template.json", SearchOption.AllDirectories),
            f => !f.Contains($"{Path.DirectorySeparatorChar}node_modules{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
    }

    // Include="../Folder/…", Update="../Folder/…", any attribute: the first folder above the project's own.
    [GeneratedRegex("""="\.\.[/\\](?<folder>[^/\\"]+)[/\\]""")]
    private static partial Regex OutsideFolder();
}
