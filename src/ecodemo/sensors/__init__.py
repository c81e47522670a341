"""Sensors: the catalogue, one connector module per source, data-quality checks.

Each connector splits ``fetch_*`` (network: timeout, retry with backoff, typed
:class:`ecodemo.errors.SourceError`) from ``parse_*`` (pure, runs on recorded payloads), asks
only for data newer than what the store holds, and writes through
:func:`ecodemo.store.ingest.ingest_table` so validation and quarantine apply.
"""
