using Microsoft.AspNetCore.Http.HttpResults;
using SentryVibe.Protocol;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Apis;

public static class TemplatesApi
{
    public static RouteGroupBuilder MapTemplatesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/templates").WithTags("Templates");
        api.MapGet("/", GetTemplates);
        return api;
    }

    public static Ok<TemplateView[]> GetTemplates() =>
        TypedResults.Ok(TemplateCatalog.BuiltIn.Select(t => new TemplateView(t.Id, t.Name, t.Description, t.Framework)).ToArray());
}
