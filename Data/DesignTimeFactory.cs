using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace SentryVibe.Data;

/// <summary>
/// Lets <c>dotnet ef migrations add</c> build the model without a running database. From the repository root:
/// <c>dotnet tool restore; dotnet ef migrations add Name --project Data</c> (Data is its own startup project).
/// </summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<SentryVibeDb>
{
    public SentryVibeDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SentryVibeDb>()
            .UseNpgsql("Host=localhost;Database=sentryvibe;Username=postgres")
            .Options);
}
