using SentryVibe.Runner.Cli;

return await RunnerCli.Create().Parse(args).InvokeAsync();
