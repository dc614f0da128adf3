using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Cryptography;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Tickets for the runner's preview sockets (docs/runner-protocol.md, "Preview relay"): to open a preview connection the
/// broker mints a ticket, asks the runner over its link to dial <c>/runner/preview/&lt;ticket&gt;</c>, and waits here for
/// the socket. A ticket is 256 random bits, good once, for <see cref="Lifetime"/>, and only for the token of the link that
/// asked for it: another runner's token, or none, cannot take it. The token is compared by its stored form, without a
/// database round trip: the link that asked was authenticated with it, and revoking a token closes its links.
/// </summary>
public sealed class PreviewTickets
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);

    /// <summary>Tickets issued and not yet taken or withdrawn (for tests and metrics).</summary>
    public int Outstanding => _pending.Count;

    /// <summary>A new ticket for a socket dialled with the token whose stored form is <paramref name="tokenHash"/>; dispose it when done.</summary>
    public Ticket Issue(byte[] tokenHash)
    {
        var value = Base64Url(RandomNumberGenerator.GetBytes(32));
        var pending = new Pending(tokenHash, Environment.TickCount64 + (long)Lifetime.TotalMilliseconds);
        _pending[value] = pending;
        return new Ticket(this, value, pending);
    }

    /// <summary>
    /// Takes the ticket for a dialling runner: true only for a live, unused ticket issued to the same token. A ticket is
    /// consumed by its first valid use; a wrong token leaves it for its owner.
    /// </summary>
    internal bool TryTake(string value, byte[]? tokenHash, out Pending pending)
    {
        pending = null!;
        if (tokenHash is null || !_pending.TryGetValue(value, out var found)
            || !CryptographicOperations.FixedTimeEquals(found.TokenHash, tokenHash)) return false;
        if (Environment.TickCount64 > found.ExpiresAt)
        {
            _pending.TryRemove(new KeyValuePair<string, Pending>(value, found));
            return false;
        }
        if (!_pending.TryRemove(new KeyValuePair<string, Pending>(value, found))) return false;
        pending = found;
        return true;
    }

    private void Withdraw(string value, Pending pending) => _pending.TryRemove(new KeyValuePair<string, Pending>(value, pending));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    internal sealed class Pending(byte[] tokenHash, long expiresAt)
    {
        public byte[] TokenHash { get; } = tokenHash;
        public long ExpiresAt { get; } = expiresAt;

        /// <summary>The runner's socket, once it dialled; the endpoint's request lives until the stream is disposed.</summary>
        public TaskCompletionSource<PreviewSocketStream> Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>One issued ticket: its value for the runner, and the socket the runner dials with it.</summary>
    public sealed class Ticket : IDisposable
    {
        private readonly PreviewTickets _owner;
        private readonly Pending _pending;
        private bool _handedOut;

        internal Ticket(PreviewTickets owner, string value, Pending pending) => (_owner, Value, _pending) = (owner, value, pending);

        public string Value { get; }

        /// <summary>Waits for the runner's socket; cancelled or timed out, the ticket is withdrawn.</summary>
        public async Task<PreviewSocketStream> SocketAsync(CancellationToken cancellationToken)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Lifetime);
            try
            {
                var socket = await _pending.Arrived.Task.WaitAsync(timeout.Token);
                _handedOut = true;
                return socket;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("The runner did not open the preview socket in time.");
            }
        }

        /// <summary>Withdraws the ticket if it is still unused; a socket that arrived too late is closed.</summary>
        public void Dispose()
        {
            _owner.Withdraw(Value, _pending);
            if (!_pending.Arrived.TrySetCanceled() && _pending.Arrived.Task.IsCompletedSuccessfully && !_handedOut)
            {
                _ = _pending.Arrived.Task.Result.DisposeAsync(); // sends its close frame without holding this thread
            }
        }
    }
}
