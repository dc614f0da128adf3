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

    /// <summary>Ignores the port it is given and announces its own, Vite-style with colours; serves a page.</summary>
    public static string FixedPort(int port) => $$"""
        const http = require('http');
        http.createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><p>fixed</p>'); }).listen({{port}}, '127.0.0.1', () => {
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

    /// <summary>
    /// One server of <see cref="DevScript"/>: "node serve.js html|json PORT-or-number banner" serves a page (html) or
    /// an API's <c>404 {"error":"Not found"}</c> (json) and prints the banner with {port} filled in once it listens.
    /// </summary>
    public const string Serve = """
        const [kind, portText, banner] = process.argv.slice(2);
        const http = require('http');
        const server = http.createServer((req, res) => {
          if (kind === 'html') { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><div id="root"></div>'); return; }
          res.statusCode = 404; res.setHeader('content-type', 'application/json'); res.end('{"error":"Not found"}');
        });
        server.listen(Number(portText), '127.0.0.1', () => console.log(banner.replace('{port}', server.address().port)));
        """;

    /// <summary>
    /// A dev script in the manner of the react-node template's: it starts each server as a child process (serve.js),
    /// after its delay, in order. A server's port is a number (0: any free one), "ARG" (the --port argument) or "PORT"
    /// (the variable). Kind "say" only prints the banner (a URL of something that is not this dev server's).
    /// </summary>
    public static string DevScript(params (string Kind, string Port, string Banner, int DelayMs)[] servers)
    {
        var list = string.Join(",\n", servers.Select(s =>
            $"{{ kind: {Js(s.Kind)}, port: {Js(s.Port)}, banner: {Js(s.Banner)}, delay: {s.DelayMs} }}"));
        return $$"""
            const { spawn } = require('child_process');
            const path = require('path');
            const servers = [{{list}}];
            const portOf = (p) => p === 'ARG' ? process.argv[process.argv.indexOf('--port') + 1] : p === 'PORT' ? process.env.PORT : p;
            for (const s of servers) {
              setTimeout(() => {
                if (s.kind === 'say') { console.log(s.banner); return; }
                spawn(process.execPath, [path.join(__dirname, 'serve.js'), s.kind, portOf(s.port), s.banner], { stdio: 'inherit' });
              }, s.delay);
            }
            setInterval(() => {}, 1000);
            """;
    }

    private static string Js(string value) => System.Text.Json.JsonSerializer.Serialize(value);
}
