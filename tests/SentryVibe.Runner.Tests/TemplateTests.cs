using System.Text.Json;
using LibGit2Sharp;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Checkpoints;

namespace SentryVibe.Runner.Tests;

public sealed class TemplateTests : IDisposable
{
    private readonly string _sandbox = Path.Join(Path.GetTempPath(), "sv-tpl-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly TemplateScaffolder _scaffolder = new(Options.Create(new BuildOptions()), new CheckpointStore());
    private readonly List<string> _log = [];

    public TemplateTests() => Directory.CreateDirectory(_sandbox);

    private ValueTask Log(string line)
    {
        _log.Add(line);
        return ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData("Create a React todo app", "vite-react")]
    [InlineData("A marketing landing page and blog with Astro", "astro")]
    [InlineData("A Next.js SaaS site with SSR", "nextjs")]
    [InlineData("A CRUD app with a REST api backend", "react-node")]
    [InlineData("Something entirely different", "vite-react")]
    public void A_template_is_selected_by_the_keywords_of_the_prompt(string prompt, string expected) =>
        Assert.Equal(expected, TemplateCatalog.Select(prompt).Id);

    [Fact]
    public void An_explicit_template_id_wins_over_keywords() =>
        Assert.Equal("astro", TemplateCatalog.Select("Create a React todo app", "astro").Id);

    [Fact]
    public void An_unknown_template_id_is_an_error() =>
        Assert.Throws<ArgumentException>(() => TemplateCatalog.Select("x", "angular"));

    [Theory]
    [InlineData("vite-react")]
    [InlineData("nextjs")]
    [InlineData("astro")]
    [InlineData("react-node")]
    public void Every_built_in_template_ships_a_source_tree_with_a_dev_and_build_script(string id)
    {
        var manifest = TemplateCatalog.Find(id)!;
        var tree = _scaffolder.TemplatePath(id);
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Join(tree, "package.json")));
        var scripts = package.RootElement.GetProperty("scripts");

        Assert.True(scripts.TryGetProperty("dev", out _));
        Assert.True(scripts.TryGetProperty("build", out _));
        Assert.Equal("npm run dev", manifest.RunCommand);
        Assert.Contains("{port}", manifest.PortArgument);
        Assert.False(Directory.Exists(Path.Join(tree, "node_modules")));
    }

    [Fact]
    public async Task A_built_in_template_is_copied_into_a_new_repository_without_its_manifest()
    {
        var project = Path.Join(_sandbox, "app");

        var manifest = await _scaffolder.ScaffoldAsync(project, TemplateCatalog.Find("vite-react"), null, Log, CancellationToken.None);

        Assert.Equal("vite-react", manifest.Id);
        Assert.True(File.Exists(Path.Join(project, "src", "App.tsx")));
        Assert.True(File.Exists(Path.Join(project, "package.json")));
        Assert.False(File.Exists(Path.Join(project, "template.json")));
        Assert.True(Repository.IsValid(project));
        Assert.Contains("node_modules/", File.ReadAllText(Path.Join(project, ".gitignore")));
        Assert.Contains(_log, l => l.Contains("Copied"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_git_url_template_is_cloned_without_its_history(bool asFileUrl)
    {
        var source = CreateTemplateRepository();
        var project = Path.Join(_sandbox, "from-git");

        var manifest = await _scaffolder.ScaffoldAsync(project, null, asFileUrl ? new Uri(source).AbsoluteUri : source, Log, CancellationToken.None);

        Assert.Equal("hello", File.ReadAllText(Path.Join(project, "src", "main.js")));
        Assert.Equal("vite", manifest.Framework);
        Assert.Equal("npm run dev", manifest.RunCommand);
        using var repo = new Repository(project);
        Assert.Null(repo.Head.Tip); // the template's commits are not the project's history
        Assert.Equal("refs/heads/main", repo.Head.CanonicalName);
    }

    [Fact]
    public async Task A_git_url_that_does_not_exist_is_a_clear_error_and_leaves_nothing_behind()
    {
        var project = Path.Join(_sandbox, "nothing");

        var error = await Assert.ThrowsAsync<TemplateException>(() =>
            _scaffolder.ScaffoldAsync(project, null, Path.Join(_sandbox, "no-such-repo"), Log, CancellationToken.None));

        Assert.Contains("does not exist", error.Message);
        Assert.False(Directory.Exists(project));
    }

    [Fact]
    public async Task An_unreachable_remote_repository_is_a_clear_error_and_leaves_nothing_behind()
    {
        var project = Path.Join(_sandbox, "unreachable");

        var error = await Assert.ThrowsAsync<TemplateException>(() =>
            _scaffolder.ScaffoldAsync(project, null, "http://127.0.0.1:9/nope.git", Log, CancellationToken.None));

        Assert.Contains("Could not clone", error.Message);
        Assert.False(Directory.Exists(project));
    }

    private string CreateTemplateRepository()
    {
        var path = Path.Join(_sandbox, "template-repo");
        Repository.Init(path);
        Directory.CreateDirectory(Path.Join(path, "src"));
        File.WriteAllText(Path.Join(path, "src", "main.js"), "hello");
        File.WriteAllText(Path.Join(path, "package.json"), """{"name":"t","scripts":{"dev":"vite","build":"vite build"},"devDependencies":{"vite":"^7.0.0"}}""");
        using var repo = new Repository(path);
        Commands.Stage(repo, "*");
        var me = new Signature("Test", "test@example.com", DateTimeOffset.Now);
        repo.Commit("template", me, me);
        return path;
    }

    public void Dispose() => FileSystem.DeleteDirectory(_sandbox);
}
