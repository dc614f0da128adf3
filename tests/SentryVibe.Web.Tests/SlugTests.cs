using SentryVibe.Protocol;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Tests;

/// <summary>Web's part of naming: unique slugs and preview ids. The slug rule itself is tested in SlugsTests (Link.Tests).</summary>
public sealed class SlugTests
{
    [Fact]
    public void Collisions_get_the_first_free_number()
    {
        Assert.Equal("app-3", UniqueNames.FirstFree("app", new HashSet<string> { "app", "app-2" }));
        var long60 = new string('a', 60);
        var next = UniqueNames.FirstFree(long60, new HashSet<string> { long60 });
        Assert.Equal(Slugs.MaxLength, next.Length);
        Assert.EndsWith("-2", next);
    }

    [Fact]
    public void Preview_ids_are_128_random_bits_in_hex()
    {
        var a = PreviewUrls.NewPreviewId();
        Assert.Matches("^[0-9a-f]{32}$", a);
        Assert.True(PreviewUrls.IsPreviewId(a));
        Assert.NotEqual(a, PreviewUrls.NewPreviewId());
    }
}
