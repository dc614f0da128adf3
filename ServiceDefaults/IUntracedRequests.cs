using Microsoft.AspNetCore.Http;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The requests a service keeps out of Sentry's traces, asked when each request starts (docs/operations.md, "Sentry").
/// A service registers one when some of its requests are not its own work, as the broker does for the previews it relays.
/// </summary>
public interface IUntracedRequests
{
    bool IsUntraced(HttpContext context);
}
