// Tiny node programs the tests run as dev servers: real processes, no frameworks.
namespace SentryVibe.DevServer.Tests;

public static class NodeScripts
{
    /// <summary>A process that keeps a grandchild: child → grandchild, both idle forever, pids printed.</summary>
    private const string SpawnFamily = """
        const { spawn } = require('child_process');
        const grandchildCode = "setInterval(() => {}, 1000)";
        const childCode = `const c = require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchildCode)}], { stdio: 'inherit' }); console.log('grandchild ' + c.pid); setInterval(() => {}, 1000);`;
        const child = spawn(process.execPath, ['-e', childCode], { stdio: 'inherit' });
        console.log('child ' + child.pid);
        """;

    /// <summary>HTTP server on --port N (or $PORT) that serves a root div and keeps a child and a grandchild.</summary>
    public const string Server = SpawnFamily + """

        const http = require('http');
        const i = process.argv.indexOf('--port');
        const port = Number(i >= 0 ? process.argv[i + 1] : process.env.PORT);
        http.createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><div id="root"></div>'); })
          .listen(port, '127.0.0.1', () => console.log('listening on port ' + port));
        """;

    /// <summary>Prints a few lines, then fails once the file named by its first argument exists, leaving a child behind.</summary>
    public const string Crash = SpawnFamily + """

        console.log('booting');
        console.error('Error: missing config file app.config.js');
        const trigger = process.argv[2];
        setInterval(() => { if (!trigger || require('fs').existsSync(trigger)) process.exit(1); }, 20);
        """;

    /// <summary>Idles with a child and a grandchild; SIGINT ends the leader only (as with a real terminal).</summary>
    public const string Idle = SpawnFamily + """

        console.log('idle');
        setInterval(() => {}, 1000);
        """;

    /// <summary>Ignores SIGINT (like a wedged dev server); only SIGKILL ends it.</summary>
    public const string Stubborn = SpawnFamily + """

        process.on('SIGINT', () => console.log('ignoring SIGINT'));
        process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
        console.log('stubborn');
        setInterval(() => {}, 1000);
        """;

    /// <summary>Ignores the port it is given and announces its own, Vite-style with colours.</summary>
    public static string FixedPort(int port) => $$"""
        const http = require('http');
        http.createServer((req, res) => res.end('fixed')).listen({{port}}, '127.0.0.1', () => {
          console.log('\x1b[32m  VITE v7.0.0\x1b[39m  ready in 120 ms');
          console.log('  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m{{port}}\x1b[22m/\x1b[39m');
        });
        """;

    /// <summary>Floods stdout, then serves.</summary>
    public const string Chatty = """
        for (let i = 0; i < 3000; i++) console.log('compiled module ' + i);
        const port = Number(process.env.PORT);
        require('http').createServer((req, res) => res.end('ok')).listen(port, '127.0.0.1', () => console.log('listening on port ' + port));
        """;
}
