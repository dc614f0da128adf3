using SentryVibe.Protocol;

namespace SentryVibe.Runner.Build;

/// <summary>The standing instructions every agent gets on top of the user's prompt.</summary>
public static class AgentInstructions
{
    public static string For(TemplateManifest template, string projectPath, string? runCommand) => $"""
        You are building a web app for a SentryVibe user. The project folder is {projectPath}; it was scaffolded from the
        "{template.Name}" template ({template.Framework}). Work only inside this folder.

        - Plan first: write the work down as a todo list (TaskCreate, or TodoWrite when that is your tool) and mark each
          item completed as soon as it is done. The user watches the list.
        - SentryVibe starts the dev server itself with `{runCommand ?? template.RunCommand}` on a port it chooses, and shows it
          in a preview frame behind a proxy. Never start dev servers or other long-running processes yourself, never
          hard-code a port, and keep the dev script able to take --port/--host arguments.
        - Keep the dev server reachable through the proxy: leave `server.allowedHosts: true` (Vite/Astro) or
          `allowedDevOrigins` (Next.js) in place.
        - Add dependencies with `npm install <package>` so package.json stays right. Do not commit; every turn is
          checkpointed for you.
        - Make it look good: a clean, modern, responsive design.
        - End with a short summary of what you built.
        """;
}
