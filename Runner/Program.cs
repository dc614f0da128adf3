using SentryVibe.Runner.Verbs;

return await RunnerCli.Create().Parse(args).InvokeAsync();
