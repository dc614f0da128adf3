using LibGit2Sharp;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Checkpoints;

namespace SentryVibe.Runner.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _project = Path.Join(Path.GetTempPath(), "sv-cp-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly CheckpointStore _store = new();

    public CheckpointTests()
    {
        Directory.CreateDirectory(_project);
        _store.Init(_project);
    }

    private void Write(string relative, string content)
    {
        var path = Path.Join(_project, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    [Fact]
    public void A_commit_is_authored_by_the_runner_and_listed_newest_first()
    {
        Write("a.txt", "1");
        var first = _store.Commit(_project, "First")!;
        Write("a.txt", "2");
        var second = _store.Commit(_project, "Second")!;

        Assert.Equal([second.Id, first.Id], _store.List(_project).Select(c => c.Id));
        using var repo = new Repository(_project);
        Assert.Equal(CheckpointStore.AuthorName, repo.Head.Tip.Author.Name);
    }

    [Fact]
    public void Nothing_to_commit_gives_no_checkpoint()
    {
        Write("a.txt", "1");
        _store.Commit(_project, "First");

        Assert.Null(_store.Commit(_project, "Again"));
    }

    [Fact]
    public void Ignored_folders_are_not_committed()
    {
        Write("node_modules/x/index.js", "x");
        Write("src/app.js", "app");
        _store.Commit(_project, "First");

        using var repo = new Repository(_project);
        Assert.Null(repo.Head.Tip["node_modules/x/index.js"]);
        Assert.NotNull(repo.Head.Tip["src/app.js"]);
    }

    [Fact]
    public void Restoring_an_earlier_checkpoint_gives_its_tree_as_a_new_commit_and_keeps_history()
    {
        Write("a.txt", "one");
        var first = _store.Commit(_project, "One")!;
        Write("a.txt", "two");
        Write("b.txt", "added later");
        var second = _store.Commit(_project, "Two")!;
        Write("node_modules/dep.js", "installed");

        var restored = _store.Restore(_project, first.Id);

        Assert.Equal("one", File.ReadAllText(Path.Join(_project, "a.txt")));
        Assert.False(File.Exists(Path.Join(_project, "b.txt")));
        Assert.True(File.Exists(Path.Join(_project, "node_modules", "dep.js"))); // ignored files are left alone
        var history = _store.List(_project).Select(c => c.Id).ToList();
        Assert.Equal([restored.Id, second.Id, first.Id], history);
        Assert.StartsWith("Restore checkpoint", restored.Message);
        using var repo = new Repository(_project);
        Assert.Equal(repo.Lookup<Commit>(first.Id).Tree.Sha, repo.Head.Tip.Tree.Sha);
    }

    [Fact]
    public void Uncommitted_work_is_saved_before_a_restore()
    {
        Write("a.txt", "one");
        var first = _store.Commit(_project, "One")!;
        Write("a.txt", "unsaved");

        _store.Restore(_project, first.Id);

        Assert.Contains(_store.List(_project), c => c.Message == "Before restore");
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef01234567")]
    [InlineData("not-a-sha")]
    [InlineData("")]
    public void Restoring_an_unknown_checkpoint_is_a_clear_error(string id)
    {
        Write("a.txt", "one");
        _store.Commit(_project, "One");

        Assert.Throws<CheckpointNotFoundException>(() => _store.Restore(_project, id));
    }

    public void Dispose() => FileSystem.DeleteDirectory(_project);
}
