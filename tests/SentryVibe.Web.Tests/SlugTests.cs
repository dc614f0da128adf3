using SentryVibe.Web.Services;

namespace SentryVibe.Web.Tests;

public sealed class SlugTests
{
    [Theory]
    [InlineData("Create a React todo app", "create-a-react-todo-app")]
    [InlineData("  Café -- Déjà vu!! ", "cafe-deja-vu")]
    [InlineData("!!!", "project")]
    [InlineData("UPPER_case 42", "upper-case-42")]
    public void Slugs_are_lowercase_dashed_and_folder_safe(string text, string slug) => Assert.Equal(slug, Slugs.From(text));

    [Fact]
    public void Long_slugs_are_cut_at_a_word_boundary()
    {
        var slug = Slugs.From(string.Join(" ", Enumerable.Repeat("word", 40)));
        Assert.True(slug.Length <= Slugs.MaxLength);
        Assert.EndsWith("word", slug);
    }

    [Fact]
    public void Collisions_get_the_first_free_number()
    {
        Assert.Equal("app-3", Slugs.FirstFree("app", new HashSet<string> { "app", "app-2" }));
        var long60 = new string('a', 60);
        var next = Slugs.FirstFree(long60, new HashSet<string> { long60 });
        Assert.Equal(Slugs.MaxLength, next.Length);
        Assert.EndsWith("-2", next);
    }

    [Fact]
    public void Preview_ids_are_128_random_bits_in_hex()
    {
        var a = Slugs.NewPreviewId();
        Assert.Matches("^[0-9a-f]{32}$", a);
        Assert.NotEqual(a, Slugs.NewPreviewId());
    }
}
