// Shared bits of the API files: bounded JSON bodies and ServiceResult → problem+json.
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Web.Extensions;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Apis;

public static class ApiResults
{
    public static ProblemHttpResult NotFound(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: "Conflict");

    public static ValidationProblem Invalid(IDictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, title: "The request is not valid.");

    public static ProblemHttpResult TooLarge(int limit) =>
        TypedResults.Problem($"The request body is larger than {limit / 1024} KiB.", statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload too large");

    /// <summary>Route ids are parsed here rather than by a route constraint, so a malformed id is a 404 problem too.</summary>
    public static bool TryParseId(string id, out Guid guid) => Guid.TryParse(id, out guid);

    /// <summary>The 202 (or problem) of an operation that queued a command.</summary>
    public static Results<Accepted<CommandAccepted>, ValidationProblem, ProblemHttpResult> Queued(ServiceResult<CommandAccepted> result) => result switch
    {
        ServiceResult<CommandAccepted>.Ok ok => TypedResults.Accepted((string?)null, ok.Value),
        ServiceResult<CommandAccepted>.Invalid invalid => Invalid(invalid.Errors),
        ServiceResult<CommandAccepted>.NotFound nf => NotFound(nf.Detail),
        ServiceResult<CommandAccepted>.Conflict c => Conflict(c.Detail),
        _ => throw new InvalidOperationException(),
    };
}

/// <summary>
/// Reads a JSON request body with a hard size limit, whatever the server's own limit, and turns every way it can be wrong
/// into problem+json (a malformed body is a field error of "body", not an exception).
/// </summary>
public static class JsonBody
{
    /// <summary>Exactly one of the three is set.</summary>
    public readonly record struct Outcome<T>(T? Value, ValidationProblem? Invalid = null, ProblemHttpResult? TooLarge = null);

    public static async Task<Outcome<T>> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        var limit = request.HttpContext.RequestServices.GetRequiredService<IOptions<SentryVibeOptions>>().Value.MaxRequestBodyBytes;
        if (request.ContentLength > limit) return new(null, TooLarge: ApiResults.TooLarge(limit));

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit) return new(null, TooLarge: ApiResults.TooLarge(limit));
            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0) return new(null, Invalid: ApiResults.Invalid(Body("A JSON body is required.")));
        try
        {
            var value = JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), LinkProtocol.JsonOptions);
            return value is null
                ? new(null, Invalid: ApiResults.Invalid(Body("A JSON object is required.")))
                : new(value);
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at {e.Path}";
            return new(null, Invalid: ApiResults.Invalid(Body($"The body is not valid JSON for this request{where}.")));
        }
    }

    private static Dictionary<string, string[]> Body(string message) => new() { ["body"] = [message] };
}
