using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Cryptography;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Tickets for the runner's preview sockets (docs/runner-protocol.md, "Preview relay"): to open a preview connection the
/// broker mints a ticket, asks the runner over its link to dial <c>/runner/preview/&lt;ticket&gt;</c>, and waits here for
/// the socket. A ticket is 210 random bits behind the replica's tag, good once, for <see cref="Lifetime"/>, and only for
/// the token of the link that asked for it: another runner's token, or none, cannot take it. The token is compared by its stored form, without a
/// database round trip: the link that asked was authenticated with it, and revoking a token closes its links.
/// A link's spare key (<see cref="IssueSpareKey"/>, docs/runner-protocol.md "Spare preview sockets") is the other value
/// such an address may carry: shaped like a ticket, good for as long as its link is open, under the same rule.
/// Both start with this replica's tag (<see cref="TagLength"/> characters of a hash of its id), so a dial that a load
/// balancer sends to another replica is passed on to this one (<see cref="PreviewSocketReplicas"/>).
/// </summary>
public sealed class PreviewTickets(SentryVibe.Broker.Link.BrokerIdentity identity)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(15);

    /// <summary>Characters of a ticket that name the replica which issued it; the other 35 are random (210 bits).</summary>
    public const int TagLength = 8;

    private readonly string _tag = TagOf(identity.Id);
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (byte[] TokenHash, RunnerPreviewChannels Owner)> _spareKeys = new(StringComparer.Ordinal);
    private long _issued;
    private long _sparesTaken;
    private int _sparesIdle;

    /// <summary>The tag the tickets of the replica with id <paramref name="brokerId"/> start with.</summary>
    public static string TagOf(string brokerId) => Base64Url(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(brokerId)))[..TagLength];

    /// <summary>Whether <paramref name="value"/> was issued by this replica (as a ticket or a spare key), live or not.</summary>
    public bool IsOurs(string value) => value.StartsWith(_tag, StringComparison.Ordinal);

    /// <summary>Tickets issued and not yet taken or withdrawn (for tests and metrics).</summary>
    public int Outstanding => _pending.Count;

    /// <summary>Tickets issued since the broker started: preview connections that waited for the runner to dial.</summary>
    public long Issued => Interlocked.Read(ref _issued);

    /// <summary>Preview connections that took a spare socket instead (<see cref="RunnerPreviewChannels"/>).</summary>
    public long SparesTaken => Interlocked.Read(ref _sparesTaken);

    /// <summary>Spare sockets held idle on this replica now, all links together.</summary>
    public int SparesIdle => Volatile.Read(ref _sparesIdle);

    internal void CountIdleSpares(int delta) => Interlocked.Add(ref _sparesIdle, delta);

    internal void CountSpareTaken() => Interlocked.Increment(ref _sparesTaken);

    /// <summary>A new ticket for a socket dialled with the token whose stored form is <paramref name="tokenHash"/>; dispose it when done.</summary>
    public Ticket Issue(byte[] tokenHash)
    {
        Interlocked.Increment(ref _issued);
        var value = NewValue();
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

    /// <summary>A new spare key for the link whose preview channels are <paramref name="owner"/>; withdraw it when the link closes.</summary>
    internal string IssueSpareKey(byte[] tokenHash, RunnerPreviewChannels owner)
    {
        var value = NewValue();
        _spareKeys[value] = (tokenHash, owner);
        return value;
    }

    internal void WithdrawSpareKey(string value) => _spareKeys.TryRemove(value, out _);

    /// <summary>The link a spare socket dialled with <paramref name="value"/> is for: only a live key, and only with its link's token.</summary>
    internal bool TryFindSpareOwner(string value, byte[]? tokenHash, out RunnerPreviewChannels owner)
    {
        owner = null!;
        if (tokenHash is null || !_spareKeys.TryGetValue(value, out var found)
            || !CryptographicOperations.FixedTimeEquals(found.TokenHash, tokenHash)) return false;
        owner = found.Owner;
        return true;
    }

    private void Withdraw(string value, Pending pending) => _pending.TryRemove(new KeyValuePair<string, Pending>(value, pending));

    /// <summary>43 characters, as a ticket always was (<see cref="SentryVibe.Protocol.LinkProtocol.IsPreviewTicket"/>): this replica's tag, then random.</summary>
    private string NewValue() => _tag + Base64Url(RandomNumberGenerator.GetBytes(27))[..(43 - TagLength)];

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
