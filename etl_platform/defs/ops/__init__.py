"""Cross-cutting operations: retention, backups, alerting."""
