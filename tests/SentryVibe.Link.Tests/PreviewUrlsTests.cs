// The Protocol rules both sides of the link apply: which preview URLs may be stored and shown, and what a runner id is.
using SentryVibe.Protocol;
using Xunit;

namespace SentryVibe.Link.Tests;

public sealed class PreviewUrlsTests
{
    private const string Domain = "preview.example.com";
    private const string PreviewId = "0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("javascript:parent.document.title='PWNED'//")]
    [InlineData("JavaScript:alert(1)")]
    [InlineData("data:text/html,<script>alert(1)</script>")]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://localhost/")]
    [InlineData("http://evil.com")]
    [InlineData("https://evil.com/x.trycloudflare.com")]
    [InlineData("http://localhost@evil.com")]
    [InlineData("http://user:pass@localhost:5173/")]
    [InlineData("http://a.b.trycloudflare.com")]
    [InlineData("https://trycloudflare.com")]
    [InlineData("https://x.trycloudflare.com.evil.com")]
    [InlineData("http://localhost.evil.com")]
    [InlineData("http://evil.com/" + PreviewId + "." + Domain)]
    [InlineData("http://deadbeef." + Domain)]
    [InlineData("http://a." + PreviewId + "." + Domain)]
    [InlineData("//localhost:5173/")]
    [InlineData("/relative")]
    [InlineData("")]
    [InlineData(null)]
    public void A_url_that_is_not_http_to_an_expected_host_is_not_acceptable(string? url) =>
        Assert.False(PreviewUrls.IsAcceptable(url, Domain), url);

    [Theory]
    [InlineData("http://localhost:5173")]
    [InlineData("http://localhost:5173/path?q=1")]
    [InlineData("http://127.0.0.1:3000/")]
    [InlineData("http://[::1]:3000/")]
    [InlineData("http://app.localhost:5173/")]
    [InlineData("https://x.trycloudflare.com")]
    [InlineData("https://quiet-lake-1234.trycloudflare.com/")]
    [InlineData("http://" + PreviewId + "." + Domain + "/")]
    [InlineData("https://" + PreviewId + "." + Domain + ":8443/")]
    public void Loopback_quick_tunnels_and_this_preview_domain_are_acceptable(string url) =>
        Assert.True(PreviewUrls.IsAcceptable(url, Domain), url);

    [Fact]
    public void A_relay_url_is_built_from_the_preview_id_and_domain_and_is_itself_acceptable()
    {
        var url = PreviewUrls.ForRelay(PreviewId, "preview.localhost:5100", "https");

        Assert.Equal($"https://{PreviewId}.preview.localhost:5100/", url);
        Assert.Equal($"http://{PreviewId}.{Domain}/", PreviewUrls.ForRelay(PreviewId, Domain, "javascript"));
        Assert.True(PreviewUrls.IsAcceptable(url, "preview.localhost:5100"));
    }
}

public sealed class RunnerIdsTests
{
    [Theory]
    [InlineData("local")]
    [InlineData("laptop-2")]
    [InlineData("Build_Box.01")]
    [InlineData("a")]
    public void Ids_of_letters_digits_dots_dashes_and_underscores_are_valid(string id) => Assert.True(RunnerIds.IsValid(id));

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("-rm")]
    [InlineData("_x")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData("laptöp")]
    [InlineData("x\n")]
    public void Anything_else_is_not_a_runner_id(string? id) => Assert.False(RunnerIds.IsValid(id));

    [Fact]
    public void A_runner_id_is_at_most_100_characters() =>
        Assert.Equal((true, false), (RunnerIds.IsValid(new string('a', 100)), RunnerIds.IsValid(new string('a', 101))));

    [Theory]
    [InlineData("laptop-2", "laptop-2")]
    [InlineData("My Laptop", "my-laptop")]
    [InlineData("Jörg's MacBook Pro", "jorg-s-macbook-pro")]
    [InlineData("  ..hidden  ", "hidden")]
    [InlineData("!!!", "runner")]
    [InlineData("", "runner")]
    public void A_name_becomes_a_valid_id(string name, string id)
    {
        Assert.Equal(id, RunnerIds.FromName(name));
        Assert.True(RunnerIds.IsValid(RunnerIds.FromName(name)));
    }
}
