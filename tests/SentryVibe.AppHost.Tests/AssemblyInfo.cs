using Xunit;

// Each whole-app test starts Postgres, DCP and three services; on a 2-core machine they run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
