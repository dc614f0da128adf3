namespace SentryVibe.Web.Services;

/// <summary>What a domain operation did, so the API and the UI can each render it their way.</summary>
public abstract record ServiceResult<T>
{
    public sealed record Ok(T Value) : ServiceResult<T>;
    /// <summary>Field errors, keyed by the camelCase request property ("body" for the request as a whole).</summary>
    public sealed record Invalid(IDictionary<string, string[]> Errors) : ServiceResult<T>;
    public sealed record NotFound(string Detail) : ServiceResult<T>;
    public sealed record Conflict(string Detail) : ServiceResult<T>;

    public static implicit operator ServiceResult<T>(T value) => new Ok(value);
}
