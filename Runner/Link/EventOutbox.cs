using System.Buffers;
using System.Globalization;
using System.Threading.Channels;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

/// <summary>
/// The runner's durable outbox. <see cref="PublishAsync"/> returns once the event is on disk (fsync); a single writer
/// group-commits whatever is waiting, so many publishers share one fsync. Events get a per-runner seq that survives
/// restarts and stay until the broker acks them; acked segments are deleted.
/// </summary>
/// <remarks>
/// On disk: <c>&lt;dir&gt;/&lt;firstSeq:D20&gt;.seg</c> files of records <c>[u32 length][u32 crc32][RunnerEvent JSON]</c>, and
/// <c>acked</c> holding the committed-through seq (the record format is <see cref="OutboxRecord"/>). A torn tail (crash mid-write) fails its CRC and is cut off at start.
/// </remarks>
public sealed class EventOutbox : IEventSink, IAsyncDisposable
{
    private const long SegmentLimitBytes = 4 * 1024 * 1024;
    private const int MaxGroup = 4096;

    /// <summary>Largest single event (serialized); anything bigger could never cross the link, so it is refused up front.</summary>
    public const int MaxEventBytes = 1024 * 1024;

    private readonly string _directory;
    private readonly Channel<PendingWrite> _writes = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _lock = new();
    private readonly Queue<(RunnerEvent Event, int Bytes)> _pending = new();
    private readonly SortedDictionary<long, SegmentInfo> _segments = [];
    private readonly Task _writer;
    private readonly Task _trimmer;
    private readonly Channel<TaskCompletionSource> _trims = Channel.CreateUnbounded<TaskCompletionSource>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _ackFile = new();
    private long _persistedAcked = -1;
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _available = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private FileStream? _active;
    private long _activeFirstSeq;
    private long _lastSeq;
    private long _ackedSeq;

    public EventOutbox(string directory)
    {
        _directory = directory;
        OwnerOnly.Directory(directory);
        Recover();
        _writer = Task.Run(WriteLoopAsync);
        _trimmer = Task.Run(TrimLoopAsync);
    }

    public long LastSeq { get { lock (_lock) return _lastSeq; } }
    public long AckedSeq { get { lock (_lock) return _ackedSeq; } }
    public int PendingCount { get { lock (_lock) return _pending.Count; } }

    public async ValueTask PublishAsync(Guid? projectId, ProjectEvent body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        var write = new PendingWrite(projectId, body, DateTimeOffset.UtcNow);
        if (!_writes.Writer.TryWrite(write)) throw new ObjectDisposedException(nameof(EventOutbox));
        await write.Done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Up to <paramref name="max"/> unacked events and about <paramref name="maxBytes"/> of them (always at least one),
    /// oldest first; they stay until acked. The byte cap keeps a batch of big events under the link's message limit.
    /// </summary>
    /// <param name="after">Only events above this seq: those up to it are on their way already.</param>
    public IReadOnlyList<RunnerEvent> PeekBatch(int max, long after = 0, int maxBytes = 2 * 1024 * 1024)
    {
        lock (_lock)
        {
            var batch = new List<RunnerEvent>(Math.Min(max, _pending.Count));
            var bytes = 0L;
            foreach (var (e, size) in _pending)
            {
                if (e.Seq <= after) continue;
                if (batch.Count >= max || (batch.Count > 0 && bytes + size > maxBytes)) break;
                batch.Add(e);
                bytes += size;
            }
            return batch;
        }
    }

    /// <summary>Whether an unacknowledged event above seq <paramref name="after"/> is waiting.</summary>
    public bool HasPendingAfter(long after)
    {
        lock (_lock) return _pending.Count > 0 && _lastSeq > after;
    }

    /// <summary>Completes when there is an unacknowledged event above seq <paramref name="after"/> to send (at once when there is).</summary>
    public Task WaitForPendingAsync(long after, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_pending.Count > 0 && _lastSeq > after) return Task.CompletedTask;
            if (_available.Task.IsCompleted) _available = new(TaskCreationOptions.RunContinuationsAsynchronously);
            return _available.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// The broker's committed-through seq from Hello. When it is above anything this outbox ever numbered, this runner's
    /// state was reset (new machine, deleted home): unsent events are renumbered above it so none collides with old rows.
    /// </summary>
    public async Task SyncWithBrokerAsync(long committedThroughSeq)
    {
        bool renumber;
        lock (_lock) renumber = committedThroughSeq > _lastSeq;
        if (!renumber)
        {
            await AcknowledgeAsync(committedThroughSeq);
            return;
        }

        // Goes through the writer so numbering stays single-threaded.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_writes.Writer.TryWrite(new PendingWrite(committedThroughSeq, done))) throw new ObjectDisposedException(nameof(EventOutbox));
        await done.Task;
    }

    /// <summary>
    /// Drops everything up to the committed seq at once; recording it on disk and deleting fully acked segments happen on
    /// a background trimmer (coalesced, off the send path). The task completes when that is done.
    /// </summary>
    public Task AcknowledgeAsync(long committedThroughSeq)
    {
        lock (_lock)
        {
            if (committedThroughSeq <= _ackedSeq) return Task.CompletedTask;
            _ackedSeq = Math.Min(committedThroughSeq, _lastSeq);
            while (_pending.Count > 0 && _pending.Peek().Event.Seq <= _ackedSeq) _pending.Dequeue();
        }
        var trimmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_trims.Writer.TryWrite(trimmed)) return Task.CompletedTask;
        return trimmed.Task;
    }

    private async Task TrimLoopAsync()
    {
        var waiting = new List<TaskCompletionSource>();
        while (await _trims.Reader.WaitToReadAsync())
        {
            waiting.Clear();
            while (_trims.Reader.TryRead(out var t)) waiting.Add(t);
            try
            {
                long acked;
                List<string> obsolete;
                lock (_lock)
                {
                    acked = _ackedSeq;
                    obsolete = _segments.Where(s => s.Key != _activeFirstSeq && s.Value.LastSeq <= acked).Select(s => s.Key).ToList()
                        .Select(k => { var path = _segments[k].Path; _segments.Remove(k); return path; }).ToList();
                }
                // The acked seq is on disk before any segment goes, so the seq counter can never go back.
                WriteAckedFile(acked);
                foreach (var path in obsolete)
                {
                    try { File.Delete(path); } catch (IOException) { }
                }
                foreach (var t in waiting) t.TrySetResult();
            }
            catch (Exception e)
            {
                foreach (var t in waiting) t.TrySetException(e);
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _writes.Reader;
        var group = new List<PendingWrite>(MaxGroup);
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                group.Clear();
                while (group.Count < MaxGroup && reader.TryRead(out var w))
                {
                    if (w.RenumberAbove is { } above)
                    {
                        Flush(group, buffer);
                        group.Clear();
                        Renumber(above, w.Done);
                        continue;
                    }
                    group.Add(w);
                }
                Flush(group, buffer);
            }
        }
        catch (OperationCanceledException) { }
    }

    private void Flush(List<PendingWrite> group, ArrayBufferWriter<byte> buffer)
    {
        if (group.Count == 0) return;
        long next;
        lock (_lock) next = _lastSeq + 1;
        var events = new List<(RunnerEvent Event, int Bytes)>(group.Count);
        var accepted = new List<PendingWrite>(group.Count);
        buffer.Clear();
        foreach (var w in group)
        {
            var e = new RunnerEvent(next, w.ProjectId, w.Timestamp, w.Body!);
            var before = buffer.WrittenCount;
            OutboxRecord.Append(buffer, e);
            var size = buffer.WrittenCount - before - OutboxRecord.HeaderBytes;
            if (size > MaxEventBytes)
            {
                // Rewind this record: no seq is used up, so the numbering stays gap-free.
                var kept = buffer.WrittenSpan[..before].ToArray();
                buffer.Clear();
                buffer.Write(kept);
                w.Done.TrySetException(new ArgumentException($"An event of {size} bytes exceeds the {MaxEventBytes}-byte limit; split it."));
                continue;
            }
            events.Add((e, size));
            accepted.Add(w);
            next++;
        }
        if (events.Count == 0) return;

        try
        {
            var file = ActiveSegment(events[0].Event.Seq);
            var length = file.Length;
            try
            {
                file.Write(buffer.WrittenSpan);
                file.Flush(flushToDisk: true);
            }
            catch
            {
                // Nothing of this group counts: cut the file back so no half group is read at restart.
                try { file.SetLength(length); } catch (IOException) { }
                throw;
            }
        }
        catch (Exception e)
        {
            foreach (var w in accepted) w.Done.TrySetException(e);
            return;
        }

        lock (_lock)
        {
            _lastSeq = events[^1].Event.Seq;
            _segments[_activeFirstSeq] = _segments[_activeFirstSeq] with { LastSeq = _lastSeq };
            foreach (var e in events) _pending.Enqueue(e);
            _available.TrySetResult();
        }
        foreach (var w in accepted) w.Done.TrySetResult();
    }

    private void Renumber(long above, TaskCompletionSource done)
    {
        try
        {
            List<(RunnerEvent Event, int Bytes)> unsent;
            List<string> old;
            lock (_lock)
            {
                unsent = [.. _pending];
                old = _segments.Values.Select(s => s.Path).ToList();
                _active?.Dispose();
                _active = null;
                _segments.Clear();
                _pending.Clear();
                _lastSeq = above;
                _ackedSeq = above;
                WriteAckedFile(above);
            }
            var buffer = new ArrayBufferWriter<byte>();
            var renumbered = unsent.Select((e, i) => (Event: e.Event with { Seq = above + 1 + i }, e.Bytes)).ToList();
            foreach (var (e, _) in renumbered) OutboxRecord.Append(buffer, e);
            if (renumbered.Count > 0)
            {
                var file = ActiveSegment(above + 1);
                file.Write(buffer.WrittenSpan);
                file.Flush(flushToDisk: true);
            }
            lock (_lock)
            {
                if (renumbered.Count > 0)
                {
                    _lastSeq = renumbered[^1].Event.Seq;
                    _segments[_activeFirstSeq] = _segments[_activeFirstSeq] with { LastSeq = _lastSeq };
                }
                foreach (var e in renumbered) _pending.Enqueue(e);
                if (_pending.Count > 0) _available.TrySetResult();
            }
            foreach (var path in old.Where(p => _active is null || p != _active.Name))
            {
                try { File.Delete(path); } catch (IOException) { }
            }
            done.TrySetResult();
        }
        catch (Exception e)
        {
            done.TrySetException(e);
        }
    }

    private FileStream ActiveSegment(long nextSeq)
    {
        if (_active is not null && _active.Length < SegmentLimitBytes) return _active;
        _active?.Dispose();
        var path = Path.Combine(_directory, nextSeq.ToString("D20", CultureInfo.InvariantCulture) + ".seg");
        _active = OwnerOnly.Open(path, FileMode.Append, FileAccess.Write, FileShare.Read, 1);
        lock (_lock)
        {
            _activeFirstSeq = nextSeq;
            _segments[nextSeq] = new SegmentInfo(path, nextSeq - 1);
        }
        return _active;
    }

    private void Recover()
    {
        var ackedPath = Path.Combine(_directory, "acked");
        if (File.Exists(ackedPath) && long.TryParse(File.ReadAllText(ackedPath).Trim(), CultureInfo.InvariantCulture, out var acked))
        {
            _ackedSeq = acked;
        }
        _lastSeq = _ackedSeq;

        foreach (var path in Directory.GetFiles(_directory, "*.seg").OrderBy(p => p, StringComparer.Ordinal))
        {
            if (!long.TryParse(Path.GetFileNameWithoutExtension(path), CultureInfo.InvariantCulture, out var first)) continue;
            var last = first - 1;
            var bytes = File.ReadAllBytes(path);
            var offset = OutboxRecord.ReadWhole(bytes, (e, length) =>
            {
                last = e.Seq;
                if (e.Seq > _ackedSeq) _pending.Enqueue((e, length));
            });
            if (offset < bytes.Length)
            {
                // A torn tail: the group it belonged to was never acknowledged to a publisher.
                using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
                f.SetLength(offset);
                f.Flush(flushToDisk: true);
            }
            _lastSeq = Math.Max(_lastSeq, last);
            if (last <= _ackedSeq)
            {
                File.Delete(path);
            }
            else
            {
                _segments[first] = new SegmentInfo(path, last);
            }
        }
    }

    private void WriteAckedFile(long seq)
    {
        lock (_ackFile)
        {
            // Only ever forward: the trimmer and a renumbering may race to record it.
            if (seq <= _persistedAcked) return;
            var path = Path.Combine(_directory, "acked");
            var temp = path + ".tmp";
            using (var f = OwnerOnly.Open(temp))
            {
                f.Write(System.Text.Encoding.ASCII.GetBytes(seq.ToString(CultureInfo.InvariantCulture)));
                f.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            _persistedAcked = seq;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _trims.Writer.TryComplete();
        try { await _trimmer.WaitAsync(TimeSpan.FromSeconds(5)); } catch (TimeoutException) { }
        _writes.Writer.TryComplete();
        try { await _writer.WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { await _stopping.CancelAsync(); }
        _active?.Dispose();
        _stopping.Dispose();
    }

    private sealed record SegmentInfo(string Path, long LastSeq);

    private sealed class PendingWrite
    {
        public PendingWrite(Guid? projectId, ProjectEvent body, DateTimeOffset timestamp)
        {
            ProjectId = projectId;
            Body = body;
            Timestamp = timestamp;
            Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public PendingWrite(long renumberAbove, TaskCompletionSource done)
        {
            RenumberAbove = renumberAbove;
            Done = done;
        }

        public Guid? ProjectId { get; }
        public ProjectEvent? Body { get; }
        public DateTimeOffset Timestamp { get; }
        public long? RenumberAbove { get; }
        public TaskCompletionSource Done { get; }
    }
}
