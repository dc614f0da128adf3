using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Tests;

public sealed class WorkspaceTests : IDisposable
{
    private readonly string _sandbox = Path.Join(Path.GetTempPath(), "sv-ws-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly ProjectWorkspace _workspace;

    public WorkspaceTests()
    {
        Directory.CreateDirectory(Path.Join(_sandbox, "workspace", "app", "src"));
        Directory.CreateDirectory(Path.Join(_sandbox, "outside"));
        _workspace = new ProjectWorkspace(Path.Join(_sandbox, "workspace"));
    }

    private string App => Path.Join(_workspace.Root, "app");

    [Theory]
    [InlineData("todo-app")]
    [InlineData("a")]
    [InlineData("app2-v3")]
    public void Valid_slugs_map_to_a_folder_in_the_workspace(string slug) =>
        Assert.Equal(Path.Join(_workspace.Root, slug), _workspace.ProjectPath(slug));

    [Theory]
    [InlineData("../x")]
    [InlineData("..")]
    [InlineData("/etc")]
    [InlineData("Todo")]
    [InlineData("my app")]
    [InlineData("-lead")]
    [InlineData("")]
    [InlineData("a/b")]
    public void Invalid_slugs_are_refused_with_a_reason(string slug)
    {
        var error = Assert.Throws<WorkspaceException>(() => _workspace.ProjectPath(slug));
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Fact]
    public void A_slug_longer_than_60_characters_is_refused() =>
        Assert.Contains("60", Assert.Throws<WorkspaceException>(() => _workspace.ProjectPath(new string('a', 61))).Message);

    [Fact]
    public void Relative_paths_resolve_inside_the_project() =>
        Assert.Equal(Path.Join(App, "src", "App.tsx"), _workspace.Resolve(App, "src/App.tsx"));

    [Theory]
    [InlineData("../other/x.txt")]
    [InlineData("src/../../x.txt")]
    [InlineData("/etc/passwd")]
    public void Paths_leaving_the_project_are_refused(string path) =>
        Assert.Throws<WorkspaceException>(() => _workspace.Resolve(App, path));

    [Fact]
    public void An_absolute_path_inside_the_project_is_accepted() =>
        Assert.Equal(Path.Join(App, "src"), _workspace.Resolve(App, Path.Join(App, "src")));

    [Fact]
    public void A_symlink_that_escapes_the_project_is_refused()
    {
        Directory.CreateSymbolicLink(Path.Join(App, "escape"), Path.Join(_sandbox, "outside"));

        var error = Assert.Throws<WorkspaceException>(() => _workspace.Resolve(App, "escape/secret.txt"));
        Assert.Contains("symbolic link", error.Message);
    }

    [Fact]
    public void A_symlink_that_stays_inside_the_project_is_accepted()
    {
        Directory.CreateSymbolicLink(Path.Join(App, "source"), Path.Join(App, "src"));

        Assert.Equal(Path.Join(App, "source", "a.ts"), _workspace.Resolve(App, "source/a.ts"));
    }

    [Fact]
    public void A_project_folder_that_is_a_symlink_out_of_the_workspace_is_refused()
    {
        Directory.CreateSymbolicLink(Path.Join(_workspace.Root, "linked"), Path.Join(_sandbox, "outside"));

        Assert.Throws<WorkspaceException>(() => _workspace.ProjectPath("linked"));
    }

    public void Dispose() => Directory.Delete(_sandbox, recursive: true);
}
