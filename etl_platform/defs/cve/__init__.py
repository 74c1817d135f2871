"""NVD CVE API 2.0 -> raw pages per day -> typed Parquet -> per-day diff -> warehouse tables."""
