"""Reference central platform: enrolment, check-in ingest with dedupe, documents, report."""
