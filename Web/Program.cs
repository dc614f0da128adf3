using SentryVibe.Data;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Apis;
using SentryVibe.Web.Auth;
using SentryVibe.Web.Components;
using SentryVibe.Web.Extensions;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddSentryVibeDb();
builder.AddApplicationServices();

var app = builder.Build();

await app.MigrateDatabaseAsync();

app.UseForwardedHeaders();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseAuthentication();
app.UseSameOriginForCookieRequests();
app.UseAuthorization();
app.UseAntiforgery();

app.MapDefaultEndpoints();
app.MapStaticAssets().AllowAnonymous();
app.MapLoginApi();
app.MapTemplatesApi();
app.MapRunnersApi();
app.MapProjectsApi();
app.MapAccountApi();
app.MapInvitationsApi();
app.MapPeopleApi();
app.MapPasskeyEndpoints();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

app.Run();

/// <summary>Entry point type, visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
