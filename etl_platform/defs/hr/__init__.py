"""HR data: historic CSV migration and a batch ingestion API -> warehouse tables, reports, AVRO backups."""
