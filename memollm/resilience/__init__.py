"""Around the upstream call: retries, API-key failover, single-flight."""
