using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace SentryVibe.Broker.Link;

/// <summary>What every connection needs, gathered so a connection takes one dependency instead of ten.</summary>
public sealed class LinkServices(
    BrokerIdentity identity,
    RunnerConnectionRegistry registry,
    RunnerStore runners,
    CommandStore commands,
    EventIntake events,
    RunnerAuthenticator authenticator,
    SentryVibe.Broker.Previews.PreviewTickets previewTickets,
    IOptionsMonitor<BrokerOptions> options,
    LinkMetrics metrics,
    ILoggerFactory loggers)
{
    public static readonly ActivitySource ActivitySource = new("SentryVibe.Broker");

    public BrokerIdentity Identity => identity;
    public RunnerConnectionRegistry Registry => registry;
    public RunnerStore Runners => runners;
    public CommandStore Commands => commands;
    public EventIntake Events => events;
    public RunnerAuthenticator Authenticator => authenticator;
    public SentryVibe.Broker.Previews.PreviewTickets PreviewTickets => previewTickets;
    public BrokerOptions Options => options.CurrentValue;
    public LinkMetrics Metrics => metrics;
    public ILoggerFactory Loggers => loggers;
}
