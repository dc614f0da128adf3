using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Link;

/// <summary>
/// The ids of commands this runner has taken on, appended and fsynced BEFORE the command runs: a redelivered id
/// (after a lost ack, a broker switch, or a runner restart) is recognised and never runs twice.
/// </summary>
public sealed class CommandJournal : IDisposable
{
    private readonly HashSet<Guid> _seen = [];
    private readonly FileStream _file;
    private readonly Lock _lock = new();

    public CommandJournal(string directory)
    {
        OwnerOnly.Directory(directory);
        var path = Path.Combine(directory, "commands.journal");
        if (File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                // A torn last line (crash mid-append) does not parse and is ignored: that command never started.
                if (Guid.TryParseExact(line.Trim(), "N", out var id)) _seen.Add(id);
            }
        }
        _file = OwnerOnly.Open(path, FileMode.Append);
    }

    public int Count { get { lock (_lock) return _seen.Count; } }

    public bool Contains(Guid id) { lock (_lock) return _seen.Contains(id); }

    /// <summary>Records the id durably; false when it was recorded before (a duplicate).</summary>
    public bool TryRecord(Guid id)
    {
        lock (_lock)
        {
            if (_seen.Contains(id)) return false;
            // A newline first, so a torn previous line cannot swallow this one.
            _file.Write(System.Text.Encoding.ASCII.GetBytes("\n" + id.ToString("N") + "\n"));
            _file.Flush(flushToDisk: true);
            _seen.Add(id);
            return true;
        }
    }

    public void Dispose() => _file.Dispose();
}
