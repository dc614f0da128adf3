// The AppHost's own trust promises on a user's machine (docs/operations.md): its Postgres asks for a password, even
// when the data directory was made by an earlier version that trusted every local user, and its log never carries
// the login link's token.
using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using SentryVibe.LocalPostgres;
using Xunit;

namespace SentryVibe.AppHost.Tests.WholeApp;

[Collection("apphost local trust")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LocalTrustTests : IDisposable
{
    private readonly string _home = RunningApp.NewHome();

    [Fact]
    public async Task An_earlier_versions_trusting_cluster_is_switched_to_a_password_and_the_login_token_stays_out_of_the_apphost_log()
    {
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        await PostgresLauncherTests.MakeTrustingClusterAsync(binaries, Path.Combine(_home, "postgres"),
            "CREATE DATABASE kept_from_before");

        var logs = new CapturedLogger();
        await using var app = await RunningApp.StartAsync(_home, builder => builder.Services.AddLogging(l => l.AddProvider(logs)));

        // Web and Broker got the password through their connection string: the app is up and serving.
        using var api = app.CreateApiClient();
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/projects")).StatusCode);

        using var contract = JsonDocument.Parse(await File.ReadAllTextAsync(app.ContractFile));
        var port = contract.RootElement.GetProperty("postgresPort").GetInt32();
        var refused = await Assert.ThrowsAsync<NpgsqlException>(() => PostgresLauncherTests.OpenAsync(port, password: null));
        Assert.Contains("password", refused.Message, StringComparison.OrdinalIgnoreCase);
        var passwordFile = Path.Combine(_home, PostgresCluster.PasswordFileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
        await using (var conn = await PostgresLauncherTests.OpenAsync(port, File.ReadAllText(passwordFile).Trim()))
        {
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = 'kept_from_before'", conn);
            Assert.Equal(1L, await cmd.ExecuteScalarAsync());
        }

        Assert.Contains(logs.Lines, l => l.Contains("SentryVibe is ready", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Contains(app.Contract.ApiToken, StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("login?t=", StringComparison.Ordinal));
    }

    public void Dispose() => RunningApp.DeleteHome(_home);

    private sealed class CapturedLogger : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose() { }

        private sealed class Logger(CapturedLogger sink, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                sink.Lines.Enqueue($"{category} {logLevel}: {formatter(state, exception)} " +
                    (state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join("; ", pairs.Select(p => $"{p.Key}={p.Value}")) : ""));
        }
    }
}
