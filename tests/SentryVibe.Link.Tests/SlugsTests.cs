using SentryVibe.Protocol;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>The one slug rule (Protocol) that Web makes slugs with and the runner checks folders against.</summary>
public sealed class SlugsTests
{
    [Theory]
    [InlineData("Create a React todo app", "create-a-react-todo-app")]
    [InlineData("My Todo App!", "my-todo-app")]
    [InlineData("  Café -- Déjà vu!! ", "cafe-deja-vu")]
    [InlineData("Café  Crème", "cafe-creme")]
    [InlineData("!!!", "project")]
    [InlineData("UPPER_case 42", "upper-case-42")]
    public void Text_becomes_a_slug_of_lowercase_letters_digits_and_hyphens(string text, string slug)
    {
        Assert.Equal(slug, Slugs.From(text));
        Assert.True(Slugs.IsValid(slug));
    }

    [Fact]
    public void Long_slugs_are_cut_at_a_word_boundary()
    {
        var slug = Slugs.From(string.Join(" ", Enumerable.Repeat("word", 40)));
        Assert.True(slug.Length <= Slugs.MaxLength);
        Assert.EndsWith("word", slug);
    }

    [Fact]
    public void Long_text_without_word_boundaries_is_cut_to_the_maximum()
    {
        Assert.Equal(Slugs.MaxLength, Slugs.From(new string('x', 100)).Length);
        Assert.True(Slugs.IsValid(Slugs.From(new string('x', 100))));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("-app")]
    [InlineData("app-")]
    [InlineData("App")]
    [InlineData("../etc")]
    [InlineData("a/b")]
    public void Anything_else_is_not_a_slug_and_says_why(string? slug)
    {
        Assert.False(Slugs.IsValid(slug));
        Assert.NotNull(Slugs.Problem(slug));
    }

    [Fact]
    public void A_slug_longer_than_the_maximum_is_refused_by_its_length() =>
        Assert.Contains("60", Slugs.Problem(new string('a', 61)));
}
