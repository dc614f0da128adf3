using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using SentryVibe.Protocol;
using Xunit.Abstractions;

namespace SentryVibe.DevServer.Tests;

/// <summary>
/// A minimal Vite + React project, installed once and cached under the temp folder keyed by its package.json,
/// so reruns start in seconds.
/// </summary>
public sealed class ViteProjectFixture : IAsyncLifetime
{
    public const string PackageJson = """
        {
          "name": "sentryvibe-vite-fixture",
          "private": true,
          "version": "0.0.0",
          "type": "module",
          "scripts": { "dev": "vite", "build": "vite build" },
          "dependencies": { "react": "^19.1.0", "react-dom": "^19.1.0" },
          "devDependencies": { "vite": "^7.1.0", "@vitejs/plugin-react": "^5.0.0" }
        }
        """;

    private static readonly Dictionary<string, string> Sources = new()
    {
        ["index.html"] = """
            <!doctype html>
            <html lang="en">
              <head><meta charset="UTF-8" /><title>Todo</title></head>
              <body>
                <div id="root"></div>
                <script type="module" src="/src/main.jsx"></script>
              </body>
            </html>
            """,
        ["vite.config.js"] = """
            import { defineConfig } from 'vite'
            import react from '@vitejs/plugin-react'
            export default defineConfig({ plugins: [react()] })
            """,
        ["src/main.jsx"] = """
            import { StrictMode } from 'react'
            import { createRoot } from 'react-dom/client'
            import App from './App.jsx'
            createRoot(document.getElementById('root')).render(<StrictMode><App /></StrictMode>)
            """,
        ["src/App.jsx"] = """
            import { useState } from 'react'
            export default function App() {
              const [todos, setTodos] = useState(['Try SentryVibe'])
              return <main><h1>Todos</h1><ul>{todos.map(t => <li key={t}>{t}</li>)}</ul>
                <button onClick={() => setTodos([...todos, 'Another'])}>Add</button></main>
            }
            """,
    };

    public string Path { get; private set; } = "";

    public TimeSpan InstallTime { get; private set; }

    public async Task InitializeAsync()
    {
        (Path, InstallTime) = await InstallOnceAsync("vite-react", PackageJson);
        foreach (var (relative, content) in Sources)
        {
            var full = System.IO.Path.Combine(Path, relative);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>
    /// Installs <paramref name="packageJson"/> with npm once into a folder of the temp dir keyed by its hash (staged, then
    /// moved into place under a lock, since another test run may be installing the same one). Returns the folder and how
    /// long the install took (zero when the cache was warm).
    /// </summary>
    internal static async Task<(string Path, TimeSpan InstallTime)> InstallOnceAsync(string name, string packageJson)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(packageJson)))[..12].ToLowerInvariant();
        var root = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sentryvibe-devserver-tests");
        Directory.CreateDirectory(root);
        var path = System.IO.Path.Combine(root, $"{name}-{hash}");
        var installTime = TimeSpan.Zero;
        var marker = System.IO.Path.Combine(path, ".installed");

        // Another test run may be installing the same cache right now.
        await using var lockFile = await AcquireLockAsync(System.IO.Path.Combine(root, $"{name}-{hash}.lock"));
        if (!File.Exists(marker))
        {
            var staging = $"{path}.staging-{Guid.NewGuid():N}";
            Directory.CreateDirectory(staging);
            File.WriteAllText(System.IO.Path.Combine(staging, "package.json"), packageJson);
            var watch = Stopwatch.StartNew();
            var result = await Cli.Wrap("npm").WithArguments(["install", "--no-audit", "--no-fund"])
                .WithWorkingDirectory(staging)
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(new CancellationTokenSource(TimeSpan.FromMinutes(5)).Token);
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"npm install failed ({result.ExitCode}):\n{result.StandardOutput}\n{result.StandardError}");
            }
            installTime = watch.Elapsed;
            File.WriteAllText(System.IO.Path.Combine(staging, ".installed"), DateTimeOffset.UtcNow.ToString("O"));
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            Directory.Move(staging, path);
        }
        return (path, installTime);
    }

    /// <summary>Holds an exclusive lock file: another test run may be installing the same cache right now.</summary>
    internal static async Task<FileStream> AcquireLockAsync(string path)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (watch.Elapsed < TimeSpan.FromMinutes(5))
            {
                await Task.Delay(200);
            }
        }
    }
}

public sealed class ViteDevServerTests(ViteProjectFixture vite, ITestOutputHelper output) : IClassFixture<ViteProjectFixture>, IAsyncLifetime
{
    private readonly DevServerHarness _harness = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _harness.DisposeAsync().AsTask();

    [Fact]
    public async Task A_real_Vite_React_app_starts_on_the_chosen_port_and_serves_its_page()
    {
        var template = TemplateCatalog.Find("vite-react");
        var project = _harness.Locator.Add(vite.Path, "npm run dev", template?.PortArgument ?? "-- --port {port} --strictPort --host 127.0.0.1", framework: "vite");

        var watch = Stopwatch.StartNew();
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: TimeSpan.FromSeconds(60));
        var toPort = watch.Elapsed;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var page = await http.GetAsync($"http://127.0.0.1:{detected.Port}/");
        var html = await page.Content.ReadAsStringAsync();
        var module = await http.GetAsync($"http://127.0.0.1:{detected.Port}/src/App.jsx");
        output.WriteLine($"npm install (cold cache only): {vite.InstallTime.TotalSeconds:0.0} s; start → port-detected: {toPort.TotalMilliseconds:0} ms; port {detected.Port}");
        File.AppendAllText(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sentryvibe-devserver-tests", "timings.log"),
            $"{DateTimeOffset.UtcNow:O} vite port-detected after {toPort.TotalMilliseconds:0} ms\n");

        Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<div id=\"root\"></div>", html);
        Assert.Equal(System.Net.HttpStatusCode.OK, module.StatusCode);
        Assert.Equal("starting", _harness.Events.For<DevServerStarting>(project.ProjectId).Single().Phase);
        Assert.Contains("--strictPort", _harness.Events.For<DevServerStarting>(project.ProjectId).Single().Command);
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId), l => l.Line.Contains($"http://127.0.0.1:{detected.Port}/"));

        await _harness.Manager.StopAsync(project.ProjectId, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("stopped", (await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId)).Reason);
        Assert.Empty(_harness.Supervisor.List());
    }
}
