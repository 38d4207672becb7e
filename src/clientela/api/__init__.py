"""The HTTP edge: ingestion (/v1), the REST API (/api/v1), health."""
