"""S3-compatible, GCS and Azure Blob emulators for the tests, started once per session."""
