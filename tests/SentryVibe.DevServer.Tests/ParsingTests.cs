using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;

namespace SentryVibe.DevServer.Tests;

public sealed class ParsingTests
{
    [Theory]
    [InlineData("  VITE v7.1.3  ready in 312 ms", null)]
    [InlineData("  ➜  Local:   http://localhost:5173/", 5173)]
    [InlineData("  ➜  Local:   http://127.0.0.1:5174/", 5174)]
    [InlineData("  ➜  Network: http://192.168.1.20:5173/", null)]
    [InlineData("   - Local:        http://localhost:3000", 3000)]
    [InlineData("ready - started server on 0.0.0.0:3001, url: http://localhost:3001", 3001)]
    [InlineData("ready - started server on [::]:3002", 3002)]
    [InlineData("┃ Local    http://localhost:4321/", 4321)]
    [InlineData("Server listening on port 8080", 8080)]
    [InlineData("Listening on :8081", 8081)]
    [InlineData("Server running at http://[::1]:8082/", 8082)]
    [InlineData("compiled 120 modules in 300 ms", null)]
    public void Dev_server_banners_announce_their_port(string line, int? port) =>
        Assert.Equal(port, OutputPortDetector.Detect(line));

    [Fact]
    public void Colour_codes_are_stripped_from_output()
    {
        Assert.Equal("  ➜  Local:   http://localhost:5173/",
            OutputPortDetector.StripAnsi("  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m"));
    }

    [Fact]
    public void Run_commands_split_like_a_shell_without_running_one()
    {
        var parsed = CommandLine.Parse("NODE_ENV=development npm run dev -- --open 'a b' \"c \\\"d\\\"\" e\\ f");

        Assert.Equal("npm", parsed.Program);
        Assert.Equal(["run", "dev", "--", "--open", "a b", "c \"d\"", "e f"], parsed.Arguments);
        Assert.Equal("development", parsed.Environment["NODE_ENV"]);
    }

    [Theory]
    [InlineData("npm run dev | tee log")]
    [InlineData("npm install; npm run dev")]
    [InlineData("npm run dev > out.txt")]
    [InlineData("echo $(whoami)")]
    [InlineData("npm run 'dev")]
    public void Shell_syntax_is_refused(string command) =>
        Assert.Throws<FormatException>(() => CommandLine.Parse(command));

    [Fact]
    public void The_log_throttle_lets_N_lines_a_second_through_and_summarises_the_rest()
    {
        var throttle = new LogThrottle(3);
        var sent = Enumerable.Range(0, 10).SelectMany(i => throttle.Offer($"line {i}", 1000 + i)).ToList();

        Assert.Equal(["line 0", "line 1", "line 2"], sent);
        Assert.Null(throttle.Flush(1500));
        Assert.Contains("7 more lines not shown", throttle.Flush(2001));
        Assert.Equal(["line 10"], throttle.Offer("line 10", 2002));
    }

    [Fact]
    public void The_final_flush_reports_drops_still_in_the_current_second()
    {
        var throttle = new LogThrottle(1);
        throttle.Offer("a", 0);
        throttle.Offer("b", 1);

        Assert.Contains("1 more line not shown", throttle.Flush(2, final: true));
        Assert.Null(throttle.Flush(3, final: true));
    }

    [Fact]
    public void Ports_handed_out_are_free_and_not_given_twice()
    {
        var allocator = new PortAllocator();

        var a = allocator.Reserve(5999);
        var b = allocator.Reserve(5999);

        Assert.NotEqual(a, b);
        Assert.True(PortAllocator.IsFree(b));
    }

    [Fact]
    public void A_busy_preferred_port_is_not_handed_out()
    {
        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        var port = ((System.Net.IPEndPoint)busy.LocalEndpoint).Port;

        Assert.False(PortAllocator.IsFree(port));
        Assert.NotEqual(port, new PortAllocator().Reserve(port));
    }
}
