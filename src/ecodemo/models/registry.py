"""Model registry: artefacts under ``settings.models_dir/<model_id>/`` and a row in ``models``.

Status: candidate -> promoted -> retired. Exactly one promoted model per kind (a partial unique
index, migration 004, makes the database enforce it). Rollback re-promotes the model that was
promoted before the current one. The one writer of ``models`` and ``model_choices`` (the ladder's
choice per kind, :func:`record_choice`).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from ecodemo.config import Settings
from ecodemo.errors import ModelError
from ecodemo.models.forecaster import Forecaster


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("ecodemo", "lightgbm", "numpy", "pandas", "pvlib", "holidays",
                "vacances-scolaires-france", "codecarbon"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass(frozen=True)
class ModelRow:
    model_id: str
    kind: str
    name: str
    version: int
    status: str
    created_at: str
    promoted_at: str | None
    artefact_path: str | None
    train_end: str | None
    nmae: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_SELECT = """SELECT model_id, kind, name, version, status, created_at, promoted_at,
                    artefact_path, train_end, (metrics->'__all__'->>'nmae')::float8
             FROM models"""


def _row(r: tuple[Any, ...]) -> ModelRow:
    return ModelRow(model_id=r[0], kind=r[1], name=r[2], version=r[3], status=r[4],
                    created_at=r[5].isoformat(), promoted_at=r[6].isoformat() if r[6] else None,
                    artefact_path=r[7], train_end=r[8].isoformat() if r[8] else None, nmae=r[9])


def register(conn: psycopg.Connection, settings: Settings, kind: str, forecaster: Forecaster,
             *, data_sha256: str, metrics: dict[str, Any], train_seconds: float | None,
             train_energy_kwh: float | None, energy: dict[str, Any],
             features: list[str], params: dict[str, Any]) -> ModelRow:
    """Save the artefacts and insert a candidate row; returns it."""
    name = forecaster.name
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('ecodemo.models.' || %s))", (kind,))
        version = conn.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM models WHERE kind = %s AND name = %s",
            (kind, name)).fetchone()[0]  # type: ignore[index]
        model_id = f"{kind}-{name}-v{version}"
        folder = Path(settings.models_dir) / model_id
        versions = library_versions()
        forecaster.save(folder, {
            "model_id": model_id, "kind": kind, "name": name, "version": version,
            "features": features, "params": params, "data_sha256": data_sha256,
            "training_window": {"start": forecaster.train_start_ts,
                                "fit_end": forecaster.fit_end_ts,
                                "end": forecaster.train_end_ts},
            "metrics": metrics, "energy": energy, "train_seconds": train_seconds,
            "library_versions": versions,
        })
        conn.execute(
            """INSERT INTO models (model_id, kind, name, version, status, artefact_path,
                   train_start, train_end, data_sha256, features, params, metrics,
                   train_seconds, train_energy_kwh, library_versions)
               VALUES (%s,%s,%s,%s,'candidate',%s,%s,%s,%s,%s::jsonb,%s::jsonb,%s::jsonb,
                       %s,%s,%s::jsonb)""",
            (model_id, kind, name, version, str(folder), forecaster.train_start_ts,
             forecaster.train_end_ts, data_sha256, json.dumps(features),
             json.dumps(params, default=str), json.dumps(metrics, default=str), train_seconds,
             train_energy_kwh, json.dumps(versions)))
    return get(conn, model_id)


def get(conn: psycopg.Connection, model_id: str) -> ModelRow:
    r = conn.execute(_SELECT + " WHERE model_id = %s", (model_id,)).fetchone()
    if r is None:
        raise ModelError(f"unknown model '{model_id}' (see `ecodemo models list`)")
    return _row(r)


def list_models(conn: psycopg.Connection, kind: str | None = None) -> list[ModelRow]:
    sql = _SELECT + (" WHERE kind = %s" if kind else "") + " ORDER BY kind, created_at, model_id"
    return [_row(r) for r in conn.execute(sql, (kind,) if kind else ()).fetchall()]


def promoted(conn: psycopg.Connection, kind: str) -> ModelRow | None:
    r = conn.execute(_SELECT + " WHERE kind = %s AND status = 'promoted'", (kind,)).fetchone()
    return _row(r) if r else None


def promote(conn: psycopg.Connection, model_id: str) -> ModelRow:
    """Promote a model; the kind's previously promoted model is retired."""
    row = get(conn, model_id)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('ecodemo.models.' || %s))",
                     (row.kind,))
        conn.execute("UPDATE models SET status = 'retired' WHERE kind = %s AND "
                     "status = 'promoted' AND model_id <> %s", (row.kind, model_id))
        conn.execute("UPDATE models SET status = 'promoted', promoted_at = now() "
                     "WHERE model_id = %s", (model_id,))
    return get(conn, model_id)


def rollback(conn: psycopg.Connection, kind: str) -> ModelRow:
    """Retire the promoted model and re-promote the one promoted before it."""
    current = promoted(conn, kind)
    if current is None:
        raise ModelError(f"no promoted model for kind '{kind}' to roll back")
    r = conn.execute(
        """SELECT model_id FROM models WHERE kind = %s AND model_id <> %s
             AND promoted_at IS NOT NULL AND status = 'retired'
           ORDER BY promoted_at DESC LIMIT 1""", (kind, current.model_id)).fetchone()
    if r is None:
        raise ModelError(f"kind '{kind}': no previously promoted model to roll back to")
    return promote(conn, r[0])


def load(settings: Settings, row: ModelRow) -> tuple[Forecaster, dict[str, Any]]:
    """Load a registered model's forecaster and metadata from its artefact folder."""
    folder = Path(row.artefact_path or Path(settings.models_dir) / row.model_id)
    return Forecaster.load(folder, num_threads=settings.num_threads)


def record_choice(conn: psycopg.Connection, kind: str, chosen_name: str, model_id: str | None,
                  tolerance: float, reason: str, candidates: list[dict[str, Any]]) -> None:
    """Record which rung the ladder chose for ``kind`` and why, with every candidate's
    figures (``model_choices``: the latest row is the kind's choice)."""
    conn.execute(
        """INSERT INTO model_choices (kind, chosen_name, model_id, tolerance, reason,
               candidates) VALUES (%s,%s,%s,%s,%s,%s::jsonb)""",
        (kind, chosen_name, model_id, tolerance, reason, json.dumps(candidates, default=str)))


def delete_choices(conn: psycopg.Connection, model_ids: Sequence[str],
                   kinds: Sequence[str]) -> int:
    """Delete the choices of these models or kinds. In the caller's transaction; rows
    deleted."""
    return int(conn.execute(
        "DELETE FROM model_choices WHERE model_id = ANY(%s) OR kind = ANY(%s)",
        (list(model_ids), list(kinds))).rowcount)


def delete_models(conn: psycopg.Connection, model_ids: Sequence[str]) -> int:
    """Delete these models' rows (their artefact folders stay on disk). In the caller's
    transaction; rows deleted."""
    return int(conn.execute("DELETE FROM models WHERE model_id = ANY(%s)",
                            (list(model_ids),)).rowcount)
