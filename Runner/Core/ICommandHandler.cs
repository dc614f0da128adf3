// Seam between the link (Link/), which delivers each command once, and the work that carries it out (Build/).
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Core;

/// <summary>
/// Carries out commands. Returns once the command is accepted (or refused with a reason the user sees);
/// long work goes on in the background and reports through <see cref="IEventSink"/>.
/// The link has already made sure an id runs at most once.
/// </summary>
public interface ICommandHandler
{
    Task<CommandAck> HandleAsync(CommandEnvelope envelope, CancellationToken cancellationToken);
}
