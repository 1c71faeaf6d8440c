"""De-identification of clinical text (HIPAA Safe Harbor identifiers), its synthetic test corpus and evaluation."""
