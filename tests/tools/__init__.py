"""Developer tools that run against the local AWS (scripts/least-privilege)."""
