"""Data stewardship: linking records across sources, conflicts, the curation log, releases and dataset cards."""
