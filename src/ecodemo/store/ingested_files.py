"""The one writer of the ``ingested_files`` table: the content fingerprints (SHA-256) of the
files and folders already ingested, so a drop folder or the bundled snapshot is read once per
content version."""

from __future__ import annotations

import json
from typing import Any

import psycopg


def record_file(conn: psycopg.Connection, content_sha256: str, path: str,
                counts: dict[str, Any]) -> None:
    """Remember a content as ingested from ``path`` with its counts (a content already
    recorded keeps its first row)."""
    conn.execute(
        "INSERT INTO ingested_files (content_sha256, path, counts) VALUES (%s, %s, %s::jsonb)"
        " ON CONFLICT (content_sha256) DO NOTHING",
        (content_sha256, path, json.dumps(counts, default=str)))


def delete_paths_like(conn: psycopg.Connection, pattern: str) -> int:
    """Forget the contents recorded under a path matching the ``LIKE`` pattern. In the
    caller's transaction; rows deleted."""
    return int(conn.execute("DELETE FROM ingested_files WHERE path LIKE %s",
                            (pattern,)).rowcount)
