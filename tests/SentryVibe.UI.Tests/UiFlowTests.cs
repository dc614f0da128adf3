// The web UI as a user drives it, in Chromium, while a fake broker plays the runner's part through the event log.
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using static Microsoft.Playwright.Assertions;

namespace SentryVibe.UI.Tests;

[Collection(UiCollection.Name)]
public sealed class UiFlowTests(UiFixture ui)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private FakeBroker Broker => ui.Broker;

    [Fact]
    public async Task The_login_link_signs_in_and_sign_out_returns_to_the_login_form()
    {
        var anonymous = await ui.NewPageAsync(signIn: false);
        await anonymous.GotoAsync("/runners");
        await Expect(anonymous).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login"));
        await Expect(anonymous.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await UiFixture.ShotAsync(anonymous, "01-login");

        await anonymous.GotoAsync("/login?t=wrong-token-0000000000");
        await Expect(anonymous.GetByRole(AriaRole.Alert)).ToContainTextAsync("not valid");

        var page = await ui.NewPageAsync();
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Runners" })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await page.GotoAsync("/");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login"));
    }

    [Fact]
    public async Task A_project_from_a_git_repository_is_created_with_the_form_and_a_bad_url_is_explained_inline()
    {
        var page = await ui.NewPageAsync();
        await page.Locator("#prompt").FillAsync("Make my starter a blog");
        await page.Locator("#template").SelectOptionAsync("git:");
        await page.Locator("#template-url").FillAsync("not a repository");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create project" }).ClickAsync();
        await Expect(page.Locator("#template-url + .inline-error")).ToContainTextAsync("is not a git URL");

        await page.Locator("#template-url").FillAsync("https://github.com/example/starter.git");
        await page.Locator("#runner").SelectOptionAsync(FakeBroker.RunnerId);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create project" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/projects/[0-9a-f-]{36}$"));
        var id = Guid.Parse(page.Url[^36..]);
        var start = Assert.Single(await Broker.CommandsAsync(id));
        var build = Assert.IsType<StartBuild>(System.Text.Json.JsonSerializer.Deserialize<RunnerCommand>(start.Payload, LinkProtocol.JsonOptions));
        Assert.Equal(("https://github.com/example/starter.git", ""), (build.TemplateUrl, build.TemplateId));
    }

    [Fact]
    public async Task A_project_created_with_the_form_goes_to_ready_and_its_app_shows_in_the_preview()
    {
        var page = await ui.NewPageAsync();
        await page.Locator("#prompt").FillAsync("Create a React todo app");
        await page.Locator("#template").SelectOptionAsync("vite-react");
        await page.Locator("#agent").SelectOptionAsync(Agents.None);
        await page.Locator("#runner").SelectOptionAsync(FakeBroker.RunnerId);
        await UiFixture.ShotAsync(page, "02-new-project");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create project" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/projects/[0-9a-f-]{36}$"));
        var id = Guid.Parse(page.Url[^36..]);
        var start = Assert.Single(await Broker.CommandsAsync(id));
        Assert.Equal(CommandTypes.StartBuild, start.Type);
        var build = Assert.IsType<StartBuild>(System.Text.Json.JsonSerializer.Deserialize<RunnerCommand>(start.Payload, LinkProtocol.JsonOptions));
        Assert.Equal((Agents.None, "vite-react", "Create a React todo app"), (build.Agent, build.TemplateId, build.Prompt));
        await Expect(page.Locator(".msg-user .bubble")).ToHaveTextAsync("Create a React todo app");
        await Expect(page.Locator(".project-title .badge")).ToHaveTextAsync("Queued");

        await Broker.AppendAsync(id,
            new BuildStarted("Create a React todo app", "vite-react", Agents.None),
            new BuildLog("Cloning template vite-react"),
            new TodosUpdated([new("Scaffold the template", TodoStatuses.Completed), new("Write the todo list", TodoStatuses.InProgress, "Writing the todo list"), new("Style it", TodoStatuses.Pending)]),
            new AgentMessage("I'll build a **todo app** with:\n\n- a list\n- an input\n\n`npm run dev` starts it."),
            new ToolUse("tool-1", "Write", "src/App.tsx", ToolStatuses.Running));
        await Expect(page.Locator(".project-title .badge")).ToHaveTextAsync("Building");
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("Writing the todo list");
        await Expect(page.Locator(".md strong")).ToHaveTextAsync("todo app");
        await UiFixture.ShotAsync(page, "03-building");

        await Broker.AppendAsync(id,
            new ToolUse("tool-1", "Write", "src/App.tsx", ToolStatuses.Succeeded, "Wrote 42 lines"),
            new TodosUpdated([new("Scaffold the template", TodoStatuses.Completed), new("Write the todo list", TodoStatuses.Completed), new("Style it", TodoStatuses.Completed)]),
            new ProjectMetadata("vite", "npm run dev", 5173, "/home/me/sentryvibe-workspace/create-a-react-todo-app"),
            new CheckpointCreated("c0ffee1234", "Turn 1: todo app", DateTimeOffset.UtcNow, 1),
            new BuildCompleted(4, 65_000, 0.1234m, 12_000, 3_400),
            new DevServerStarting("npm install", 5173, "installing"),
            new DevServerLog("added 187 packages in 9s"));
        await Expect(page.Locator(".project-title .badge")).ToHaveTextAsync("Ready");
        await Expect(page.Locator(".turn-foot")).ToContainTextAsync("$0.12");
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("Installing dependencies");

        await Broker.AppendAsync(id,
            new DevServerStarting("npm run dev", 5173, "starting"),
            new DevServerLog("VITE v7.1.0  ready in 312 ms"),
            new PortDetected(5173, ui.PreviewUrl, "local"));
        var app = page.FrameLocator("iframe.preview-frame");
        await Expect(app.Locator("h1")).ToHaveTextAsync("Todo app is running");
        await Expect(page.Locator(".preview-url")).ToHaveTextAsync(ui.PreviewUrl);
        await UiFixture.ShotAsync(page, "04-ready-with-preview");

        await page.GetByRole(AriaRole.Button, new() { Name = "Phone" }).ClickAsync();
        await Expect(page.Locator(".frame-wrap")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("frame-phone"));
        await page.GetByRole(AriaRole.Tab, new() { Name = "Dev server" }).ClickAsync();
        await Expect(page.Locator(".log")).ToContainTextAsync("VITE v7.1.0");
        await UiFixture.ShotAsync(page, "05-phone-width-and-dev-log");
    }

    [Fact]
    public async Task A_probe_that_fails_after_a_restart_does_not_turn_the_restarted_preview_unreachable()
    {
        var id = await ui.CreateProjectAsync("A preview restarted while its probe hangs");
        await Broker.AppendAsync(id, new BuildStarted("A preview restarted while its probe hangs", "vite-react", Agents.None), new BuildCompleted(1, 900, 0m, 0, 0),
            new DevServerStarting("npm run dev", 5173, "starting"), new PortDetected(5173, ui.PreviewUrl, "local"));
        var page = await ui.NewPageAsync();
        // The panel's first probe of the preview hangs, as one that reached the relay while the dev server stopped did.
        var held = new TaskCompletionSource<IRoute>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync(ui.PreviewUrl, async route =>
        {
            if (route.Request.ResourceType == "fetch" && held.TrySetResult(route)) return;
            await route.ContinueAsync();
        });
        await page.GotoAsync($"/projects/{id}");
        var probe = await held.Task.WaitAsync(Timeout);

        await Broker.AppendAsync(id, new DevServerExited(null, [], "stopped"));
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("The dev server is stopped");
        await Broker.AppendAsync(id, new DevServerStarting("npm run dev", 5173, "starting"), new PortDetected(5173, ui.PreviewUrl, "local"));
        var app = page.FrameLocator("iframe.preview-frame");
        await Expect(app.Locator("h1")).ToHaveTextAsync("Todo app is running");

        // The old run's probe fails now. Its verdict reaches the circuit before the click that follows it.
        await probe.AbortAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Phone" }).ClickAsync();
        await Expect(page.Locator(".frame-wrap")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("frame-phone"));
        await Expect(app.Locator("h1")).ToHaveTextAsync("Todo app is running");
        await Expect(page.Locator(".preview-state")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_follow_up_sent_with_ctrl_enter_appears_in_the_chat_and_queues_a_command()
    {
        var id = await ui.CreateProjectAsync("A landing page for a coffee shop");
        await Broker.AppendAsync(id, new BuildStarted("A landing page for a coffee shop", "vite-react", Agents.None), new BuildCompleted(1, 900, 0m, 0, 0));
        var page = await ui.NewPageAsync();
        await page.GotoAsync($"/projects/{id}");
        await Expect(page.Locator(".project-title .badge")).ToHaveTextAsync("Ready");

        await page.Locator("#follow-up").FillAsync("Make the header brown");
        await page.Locator("#follow-up").PressAsync("Control+Enter");

        await Expect(page.Locator(".msg-user .bubble").Last).ToHaveTextAsync("Make the header brown");
        await Expect(page.Locator("#follow-up")).ToHaveValueAsync("");
        var commands = await Broker.CommandsAsync(id);
        var followUp = Assert.Single(commands, c => c.Type == CommandTypes.FollowUp);
        Assert.Contains("Make the header brown", followUp.Payload);
    }

    [Fact]
    public async Task Restoring_a_checkpoint_asks_first_and_queues_a_restore_command()
    {
        var id = await ui.CreateProjectAsync("A markdown notes app");
        await Broker.AppendAsync(id,
            new BuildStarted("A markdown notes app", "vite-react", Agents.None),
            new CheckpointCreated("deadbeef01", "Turn 1: notes app", DateTimeOffset.UtcNow, 1),
            new BuildCompleted(1, 900, 0.01m, 10, 10));
        var page = await ui.NewPageAsync();
        await page.GotoAsync($"/projects/{id}");

        await page.GetByRole(AriaRole.Tab, new() { Name = "Checkpoints" }).ClickAsync();
        await page.Locator(".checkpoints").GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alertdialog)).ToContainTextAsync("Turn 1: notes app");
        await UiFixture.ShotAsync(page, "06-restore-confirm");
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();

        await Expect(page.Locator(".banner")).ToContainTextAsync("Restoring");
        var restore = Assert.Single(await Broker.CommandsAsync(id), c => c.Type == CommandTypes.RestoreCheckpoint);
        Assert.Contains("deadbeef01", restore.Payload);
    }

    [Fact]
    public async Task A_crashed_dev_server_is_explained_with_exit_code_and_last_lines_and_can_be_restarted()
    {
        var id = await ui.CreateProjectAsync("A weather dashboard");
        await Broker.AppendAsync(id,
            new BuildStarted("A weather dashboard", "vite-react", Agents.None),
            new BuildCompleted(1, 900, 0m, 0, 0),
            new DevServerStarting("npm run dev", 5173, "starting"),
            new PortDetected(5173, ui.PreviewUrl, "local"),
            new DevServerExited(1, ["> vite", "Error: Cannot find module 'react-dom/client'", "    at src/main.tsx:2:1"], "crashed"));
        var page = await ui.NewPageAsync();
        await page.GotoAsync($"/projects/{id}");

        var state = page.Locator(".preview-state");
        await Expect(state).ToContainTextAsync("exit code 1");
        await Expect(state.Locator(".last-lines")).ToContainTextAsync("Cannot find module 'react-dom/client'");
        await UiFixture.ShotAsync(page, "07-crashed");
        await state.GetByRole(AriaRole.Button, new() { Name = "Restart dev server" }).ClickAsync();

        await Eventually.WaitAsync(async () => (await Broker.CommandsAsync(id)).Any(c => c.Type == CommandTypes.StartDevServer),
            Timeout, "a start-dev-server command");
    }

    [Fact]
    public async Task A_runner_token_is_shown_once_with_the_command_and_can_be_revoked()
    {
        var page = await ui.NewPageAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Runners" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Runners", Exact = true })).ToBeVisibleAsync();
        await Expect(page.Locator("table").First).ToContainTextAsync("test-runner");

        await page.Locator("#token-name").FillAsync("build-box");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create token" }).ClickAsync();
        var command = page.Locator("#runner-command");
        await Expect(command).ToContainTextAsync($"sentryvibe-runner run --broker {UiWebFactory.BrokerUrl} --token svr_");
        await Expect(command).ToContainTextAsync(new System.Text.RegularExpressions.Regex(@"--token svr_\S+ --id build-box(-\d+)?$"));
        await Expect(page.Locator("#created-runner-id")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^build-box(-\d+)?$"));
        await UiFixture.ShotAsync(page, "08-runners-token");

        var row = page.Locator("tr", new() { HasText = "build-box" });
        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
        await page.GetByRole(AriaRole.Alertdialog).GetByRole(AriaRole.Button, new() { Name = "Revoke token" }).ClickAsync();
        await Expect(row.Locator(".badge")).ToHaveTextAsync("Revoked");
        await Expect(command).ToHaveCountAsync(0);
        await using var db = ui.Db();
        Assert.NotNull((await db.RunnerTokens.SingleAsync(t => t.Name == "build-box")).RevokedAt);
    }

    [Fact]
    public async Task Switching_projects_keeps_each_history_and_it_stays_live_meanwhile()
    {
        var first = await ui.CreateProjectAsync("Project Alpha: a kanban board");
        var second = await ui.CreateProjectAsync("Project Beta: a pomodoro timer");
        await Broker.AppendAsync(first, new BuildStarted("Project Alpha: a kanban board", "vite-react", Agents.None), new AgentMessage("Alpha says hello"),
            new BuildLog("alpha build line"));
        await Broker.AppendAsync(second, new BuildStarted("Project Beta: a pomodoro timer", "vite-react", Agents.None), new AgentMessage("Beta says hello"));
        var page = await ui.NewPageAsync();

        await page.Locator(".project-list").GetByText("Project Alpha").ClickAsync();
        await Expect(page.Locator(".md").Last).ToHaveTextAsync("Alpha says hello");
        await page.Locator(".project-list").GetByText("Project Beta").ClickAsync();
        await Expect(page.Locator(".md").Last).ToHaveTextAsync("Beta says hello");

        // While Beta is on screen, Alpha moves on.
        await Broker.AppendAsync(first, new AgentMessage("Alpha kept going"));
        await page.Locator(".project-list").GetByText("Project Alpha").ClickAsync();

        await Expect(page.Locator(".msg-user .bubble")).ToHaveTextAsync("Project Alpha: a kanban board");
        await Expect(page.Locator(".md")).ToHaveTextAsync(["Alpha says hello", "Alpha kept going"]);
        await page.GetByRole(AriaRole.Tab, new() { Name = "Build log" }).ClickAsync();
        await Expect(page.Locator(".log")).ToContainTextAsync("alpha build line");
        await UiFixture.ShotAsync(page, "09-switched-back");
    }

    [Fact]
    public async Task Deleting_a_project_asks_first_and_queues_the_delete()
    {
        var id = await ui.CreateProjectAsync("Project Gamma: to be deleted");
        var page = await ui.NewPageAsync();
        await page.GotoAsync($"/projects/{id}");

        await page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        var dialog = page.GetByRole(AriaRole.Alertdialog);
        await Expect(dialog).ToContainTextAsync("cannot be undone");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Cancel" }).ClickAsync();
        await Expect(dialog).ToHaveCountAsync(0);
        Assert.DoesNotContain(await Broker.CommandsAsync(id), c => c.Type == CommandTypes.DeleteProject);

        await page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Delete project" }).ClickAsync();

        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "What do you want to build?" })).ToBeVisibleAsync();
        await Expect(page.Locator(".project-list")).Not.ToContainTextAsync("Project Gamma");
        Assert.Single(await Broker.CommandsAsync(id), c => c.Type == CommandTypes.DeleteProject);
    }

    [Fact]
    public async Task A_project_on_an_offline_runner_says_so_in_dark_mode_and_on_a_phone()
    {
        using var client = new HttpClient { BaseAddress = new Uri(ui.BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", UiWebFactory.ApiToken);
        var response = await client.PostAsync("/api/projects", new StringContent(
            """{"prompt":"A recipe finder","agent":"none","runnerId":"old-laptop"}""", System.Text.Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var id = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();

        var page = await ui.NewPageAsync(scheme: ColorScheme.Dark);
        await page.GotoAsync($"/projects/{id}");
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("Runner offline");
        await Expect(page.Locator(".preview-state")).ToContainTextAsync("old-laptop");
        await UiFixture.ShotAsync(page, "10-offline-dark");

        var phone = await ui.NewPageAsync(width: 390, height: 844);
        await phone.GotoAsync($"/projects/{id}");
        await Expect(phone.Locator(".preview-state")).ToContainTextAsync("Runner offline");
        await UiFixture.WhenInteractiveAsync(phone);
        // Narrow screens stack the preview below the chat.
        var chatBox = await phone.Locator(".work").BoundingBoxAsync();
        var previewBox = await phone.Locator(".preview").BoundingBoxAsync();
        Assert.True(previewBox!.Y >= chatBox!.Y + chatBox.Height - 1, "the preview is below the chat");
        await UiFixture.ShotAsync(phone, "11-phone", fullPage: true);
    }
}
