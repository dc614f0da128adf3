// The instance's owner (docs/accounts.md): made at the first start, and the one the AppHost's API token and login link
// stand for. A database from before accounts becomes the owner's here, nothing lost.
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using SentryVibe.Data;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Accounts;

public sealed class OwnerAccount
{
    private Guid? id;

    /// <summary>The owner's user id; set by <see cref="EnsureAsync"/> before the app serves anything.</summary>
    public Guid Id => id ?? throw new InvalidOperationException("The owner account has not been set up yet.");

    /// <summary>
    /// Creates the owner if there is none (e-mail <c>SentryVibe:OwnerEmail</c>, no password: the login link signs them
    /// in, and they can add a password or passkey on the account page), then gives the owner every project, runner and
    /// runner token that has no user yet: an upgraded single-user database, or rows a pre-accounts broker wrote.
    /// </summary>
    public async Task EnsureAsync(IServiceProvider services, CancellationToken ct)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<SentryVibeDb>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var options = scope.ServiceProvider.GetRequiredService<IOptions<SentryVibeOptions>>().Value;
        var logger = scope.ServiceProvider.GetRequiredService<ILogger<OwnerAccount>>();

        var owner = await db.Users.Where(u => u.IsOwner).OrderBy(u => u.CreatedAt).FirstOrDefaultAsync(ct);
        if (owner is null)
        {
            owner = new User
            {
                Id = Guid.CreateVersion7(),
                UserName = options.OwnerEmail,
                Email = options.OwnerEmail,
                EmailConfirmed = true,
                DisplayName = "Owner",
                IsOwner = true,
                CreatedAt = DateTimeOffset.UtcNow,
            };
            var created = await users.CreateAsync(owner);
            if (!created.Succeeded)
            {
                throw new InvalidOperationException("Could not create the owner account: " + string.Join(" ", created.Errors.Select(e => e.Description)));
            }
            logger.LogInformation("Created the owner account {Email}", owner.Email);
        }
        id = owner.Id;

        var projects = await db.Projects.Where(p => p.OwnerId == null).ExecuteUpdateAsync(s => s.SetProperty(p => p.OwnerId, owner.Id), ct);
        var runners = await db.Runners.Where(r => r.OwnerId == null).ExecuteUpdateAsync(s => s.SetProperty(r => r.OwnerId, owner.Id), ct);
        var tokens = await db.RunnerTokens.Where(t => t.OwnerId == null).ExecuteUpdateAsync(s => s.SetProperty(t => t.OwnerId, owner.Id), ct);
        if (projects + runners + tokens > 0)
        {
            logger.LogInformation("Gave the owner {Projects} projects, {Runners} runners and {Tokens} runner tokens that had no user", projects, runners, tokens);
        }
    }
}
