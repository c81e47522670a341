"""Storage: connection (embedded or external PostgreSQL), migrations, ingestion, queries."""

from ecodemo.store.connection import Database, open_database

__all__ = ["Database", "open_database"]
