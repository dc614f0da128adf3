using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace SentryVibe.Data;

/// <summary>Lets <c>dotnet ef migrations add</c> build the model without a running database.</summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<SentryVibeDb>
{
    public SentryVibeDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SentryVibeDb>()
            .UseNpgsql("Host=localhost;Database=sentryvibe;Username=postgres")
            .Options);
}
