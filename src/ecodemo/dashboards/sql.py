"""A small PostgreSQL raw-SQL query type for grafana-foundation-sdk.

Why a custom type: the SDK (Grafana 11.6 build) ships typed query builders for Prometheus, Loki,
Elasticsearch, CloudWatch... but none for the core PostgreSQL datasource. A panel target is any
``cogvariants.Dataquery`` whose ``to_json()`` returns the datasource's query model, so a
twenty-line class gives us typed panels, variables and layout from the SDK while the SQL stays
plain text that the tests can expand and run against a real database. Annotations need the same
trick: the SDK's ``AnnotationQuery`` only models the built-in Grafana datasource.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dm

PG_TYPE = "grafana-postgresql-datasource"
PG_UID = "ecodemo-postgres"
PG = dm.DataSourceRef(type_val=PG_TYPE, uid=PG_UID)

Format = Literal["time_series", "table"]


class SqlQuery(cogvariants.Dataquery):
    """The PostgreSQL datasource's query model (code mode, raw SQL)."""

    def __init__(self, raw_sql: str = "", ref_id: str = "A", fmt: Format = "time_series",
                 datasource: dm.DataSourceRef | None = None) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format: Format = fmt
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id, "rawSql": self.raw_sql, "format": self.format,
            "editorMode": "code", "rawQuery": True,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(raw_sql=data.get("rawSql", ""), ref_id=data.get("refId", "A"),
                   fmt=data.get("format", "time_series"),
                   datasource=dm.DataSourceRef.from_json(ds) if ds else None)


class Sql(cogbuilder.Builder[SqlQuery]):
    """Builder accepted by ``Panel.with_target``: ``Sql("SELECT ...").format("table")``."""

    def __init__(self, raw_sql: str, ref_id: str = "A") -> None:
        self._internal = SqlQuery(raw_sql=_tidy(raw_sql), ref_id=ref_id, datasource=PG)

    def build(self) -> SqlQuery:
        return self._internal

    def format(self, fmt: Format) -> Self:
        self._internal.format = fmt
        return self


class SqlAnnotationQuery(dm.AnnotationQuery):
    """An annotation fed by SQL: columns ``time``, ``timeend`` (optional), ``text``, ``tags``."""

    def __init__(self, name: str, raw_sql: str, icon_color: str) -> None:
        super().__init__(name=name, datasource=PG, enable=True, hide=False, icon_color=icon_color)
        self.raw_sql = raw_sql

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload["target"] = {"refId": "Anno", "rawSql": self.raw_sql, "format": "table",
                             "editorMode": "code", "rawQuery": True}
        return payload


class SqlAnnotation(cogbuilder.Builder[dm.AnnotationQuery]):
    def __init__(self, name: str, raw_sql: str, icon_color: str) -> None:
        self._internal = SqlAnnotationQuery(name, _tidy(raw_sql), icon_color)

    def build(self) -> dm.AnnotationQuery:
        return self._internal


def _tidy(sql: str) -> str:
    """Strip the indentation of triple-quoted SQL so the JSON stays readable."""
    lines = [line.rstrip() for line in sql.strip("\n").splitlines()]
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines).strip()


# Lets Dashboard.from_json() rebuild SqlQuery targets instead of UnknownDataquery.
cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=PG_TYPE, from_json_hook=SqlQuery.from_json)
)
