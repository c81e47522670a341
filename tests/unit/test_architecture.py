"""The package's shape, checked on its source: one module writes each table, imports point down
(:data:`LAYERS`) and never in a circle, modules stay small (issue 16).

Writes are found in the string literals of ``src/ecodemo`` (docstrings and comments excluded) and
in the migrations' SQL: ``INSERT INTO``, ``UPDATE ... SET``, ``DELETE FROM``, ``TRUNCATE``,
``COPY ... FROM``, ``MERGE INTO`` and TimescaleDB's ``drop_chunks`` / ``add_retention_policy`` /
``refresh_continuous_aggregate``, on the tables and views the migrations create (temporary
staging tables are the writing module's own business). Tests may write tables directly.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = SRC / "ecodemo"
MIGRATIONS = PACKAGE / "store" / "migrations"
#: The migrations folder is one writer (seed rows of the tables it creates).
MIGRATIONS_MODULE = "ecodemo.store.migrations"
#: Migrations that correct stored rows of a table another module owns, once, at upgrade (not a
#: second writer at run time): file -> the one table it may write; the reason is in the file.
DATA_FIXES = {"013_previous_runs_publication.sql": "weather_forecasts"}
MAX_LINES = 400

_TABLE = r"(?:\w+\.)?\"?(\w+)\"?"
_WRITES = [re.compile(p, re.IGNORECASE) for p in (
    rf"\bINSERT\s+INTO\s+{_TABLE}",
    rf"\bUPDATE\s+(?:ONLY\s+)?(?!SET\b){_TABLE}(?:\s+(?:AS\s+)?\w+)?\s+SET\b",
    rf"\bDELETE\s+FROM\s+(?:ONLY\s+)?{_TABLE}",
    rf"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?{_TABLE}",
    rf"\bCOPY\s+{_TABLE}\s*(?:\([^)]*\))?\s+FROM\b",
    rf"\bMERGE\s+INTO\s+{_TABLE}",
    rf"\bREFRESH\s+MATERIALIZED\s+VIEW\s+(?:CONCURRENTLY\s+)?{_TABLE}",
    r"\b(?:drop_chunks|add_retention_policy|refresh_continuous_aggregate)\s*\(\s*'(\w+)'",
)]
#: A write whose target is filled in at run time cannot be attributed: it must name its table.
_DYNAMIC = re.compile(r"\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE|TRUNCATE|COPY)\s+\{",
                      re.IGNORECASE)
_CREATES = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(?:TABLE|VIEW)\s+"
                      r"(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sql_strings(tree: ast.AST) -> list[str]:
    """String literals of a module, docstrings left out; f-strings with ``{}`` placeholders."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in node.values))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings):
            out.append(node.value)
    return out


def _sources() -> list[tuple[str, str]]:
    """(module, text) for every Python module's SQL-bearing strings and every migration."""
    out = [(_module_name(p), "\n".join(_sql_strings(ast.parse(p.read_text(encoding="utf-8")))))
           for p in sorted(PACKAGE.rglob("*.py"))]
    out += [(f"{MIGRATIONS_MODULE}/{p.name}" if p.name in DATA_FIXES else MIGRATIONS_MODULE,
             p.read_text(encoding="utf-8")) for p in sorted(MIGRATIONS.glob("*.sql"))]
    return out


def known_tables(sources: list[tuple[str, str]]) -> set[str]:
    """The tables and views the migrations (SQL files and migrate.py) create."""
    return {m.group(1).lower() for _, text in sources for m in _CREATES.finditer(text)}


def writers(sources: list[tuple[str, str]] | None = None) -> dict[str, set[str]]:
    """Table -> the modules whose SQL writes it."""
    sources = _sources() if sources is None else sources
    tables = known_tables(sources)
    out: dict[str, set[str]] = defaultdict(set)
    for module, text in sources:
        for pattern in _WRITES:
            for m in pattern.finditer(text):
                if m.group(1).lower() in tables:
                    out[m.group(1).lower()].add(module)
    return dict(out)


def runtime_writers() -> dict[str, set[str]]:
    """:func:`writers` without each data-fix migration on the one table it corrects."""
    return {t: {m for m in mods if DATA_FIXES.get(m.rpartition("/")[2]) != t}
            for t, mods in writers().items()}


def test_the_scanner_sees_each_kind_of_write() -> None:
    """The checks below can fail: every statement form is attributed to its module."""
    sql = ast.parse('''
"""INSERT INTO sites is prose in a docstring"""
A = "INSERT INTO sites (site_id) VALUES (%s) ON CONFLICT (site_id) DO UPDATE SET name = 1"
B = """UPDATE readings r SET quality_flags = 0"""
C = "DELETE FROM public.sensors WHERE true"
D = "COPY weather (ts) FROM STDIN"
E = "TRUNCATE quarantine"
F = f"SELECT drop_chunks('forecasts', older_than => {1})"
G = "COPY _stage FROM STDIN"
H = "SELECT 1 FROM models FOR UPDATE"
''')
    text = "\n".join(_sql_strings(sql))
    sources = [("a", "CREATE TABLE IF NOT EXISTS sites (); CREATE TABLE readings ();"
                     "CREATE TABLE sensors (); CREATE TABLE weather (); CREATE TABLE models ();"
                     "CREATE TABLE quarantine (); CREATE TABLE forecasts ();"
                     "CREATE TEMP TABLE _stage ();"), ("m", text), ("n", A_SECOND_WRITER)]
    assert writers(sources) == {"sites": {"m", "n"}, "readings": {"m"}, "sensors": {"m"},
                                "weather": {"m"}, "quarantine": {"m"}, "forecasts": {"m"}}


A_SECOND_WRITER = "INSERT INTO sites (site_id) VALUES ('x')"


def test_each_table_has_one_writing_module() -> None:
    assert all((MIGRATIONS / name).is_file() for name in DATA_FIXES), DATA_FIXES
    found = runtime_writers()
    assert {"readings", "compute_runs", "sites", "sensors", "quarantine"} <= set(found)
    shared = {t: sorted(m) for t, m in sorted(found.items()) if len(m) > 1}
    assert not shared, "tables written by more than one module (one owner per table; call " \
        "its functions instead):\n" + "\n".join(f"  {t}: {', '.join(m)}" for t, m in
                                               shared.items())


def test_no_write_to_a_table_named_at_run_time() -> None:
    hits = [m for m, text in _sources() if _DYNAMIC.search(text)]
    assert not hits, f"SQL writes whose table is filled in at run time: {hits}"


def test_the_documented_owners_are_the_writers() -> None:
    """docs/architecture.md's table of owners says what the code does."""
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    documented = {m.group(1): m.group(2) for m in re.finditer(
        r"^\| `(\w+)` \| `([\w.]+)` \|", doc, re.MULTILINE)}
    actual = {t: next(iter(m)) for t, m in runtime_writers().items() if len(m) == 1}
    assert documented == actual


def test_modules_stay_small() -> None:
    big = {_module_name(p): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _imported(package: str, text: str, modules: set[str]) -> set[str]:
    """The ecodemo modules a module's source imports, at any depth (lazy imports in functions
    included); ``package`` resolves its relative imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                         for a in node.names)
    return {m for m in found if m in modules}


def _imports() -> dict[str, set[str]]:
    """Module -> the ecodemo modules it imports (lazy imports inside functions included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out[name] = _imported(package, path.read_text(encoding="utf-8"), set(modules)) - {name}
    return out


def test_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


#: The parts of ``ecodemo``, bottom layer first (docs/architecture.md, "Layers", says the same).
#: A part is a top-level module or subpackage; ``ecodemo`` is the package's own ``__init__``.
#: A module may import its own part and any part of a lower layer; a part of its own layer only
#: through an edge of :data:`ALLOWED_PEERS`; nothing above. ``dags/`` is outside the package.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("ecodemo", "errors", "config", "paths", "units", "cadence", "solar")),
    ("store", ("store",)),
    ("measurement", ("metering",)),
    ("areas", ("sensors", "models", "energy", "dashboards")),
    ("across areas", ("scheduling", "snapshot", "pipeline")),
    ("entry points", ("demo", "cli", "__main__")),
)
#: Imports between two parts of one layer, each with its reason.
ALLOWED_PEERS: dict[tuple[str, str], str] = {
    ("units", "errors"): "a bad unit is an InputError",
    ("paths", "errors"): "a missing catalogue is a ConfigError",
    ("cadence", "units"): "the cadence of each kind (units.KINDS)",
    ("energy", "models"): "the improvement is over the baselines models.baselines names",
    ("dashboards", "energy"): "the report lists energy's frugal practices (energy.practices)",
    ("pipeline", "scheduling"): "the DAGs ask the scheduling decisions through the pipeline",
    ("cli", "demo"): "`ecodemo demo` runs it",
    ("__main__", "cli"): "`python -m ecodemo`",
}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'importer -> imported (layer -> layer)' for every import that does not point down."""
    layer = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}
    names = [name for name, _ in LAYERS]
    out = []
    for importer, imported in sorted((a, b) for a, bs in graph.items() for b in bs):
        pa, pb = _part(importer), _part(imported)
        if pa == pb or (pa, pb) in ALLOWED_PEERS:
            continue
        if layer[pa] <= layer[pb]:
            out.append(f"{importer} -> {imported} ({names[layer[pa]]} -> {names[layer[pb]]})")
    return out


def test_every_part_has_a_layer() -> None:
    parts = {_part(m) for m in _imports()}
    declared = [p for _, ps in LAYERS for p in ps]
    assert len(declared) == len(set(declared)), "a part is in two layers"
    assert parts == set(declared), (f"parts without a layer: {sorted(parts - set(declared))}; "
                                    f"layers naming no part: {sorted(set(declared) - parts)}")
    layer = {part: name for name, ps in LAYERS for part in ps}
    across = [edge for edge in ALLOWED_PEERS if layer.get(edge[0]) != layer.get(edge[1])]
    assert not across, f"ALLOWED_PEERS are for parts of one layer: {across}"
    used = {(_part(a), _part(b)) for a, bs in _imports().items() for b in bs}
    stale = sorted(set(ALLOWED_PEERS) - used)
    assert not stale, f"ALLOWED_PEERS no import uses any more (remove them): {stale}"


def test_the_layer_check_can_fail() -> None:
    """An upward import, a lazy one and an undeclared edge between peers are all reported."""
    graph = {"ecodemo.sensors.catalogue": {"ecodemo.snapshot", "ecodemo.paths"},
             "ecodemo.store.sites": {"ecodemo.models.registry"},
             "ecodemo.models.data": {"ecodemo.sensors.quality", "ecodemo.models.panel"},
             "ecodemo.energy.boamps": {"ecodemo.models.baselines"}}
    assert upward_imports(graph) == [
        "ecodemo.models.data -> ecodemo.sensors.quality (areas -> areas)",
        "ecodemo.sensors.catalogue -> ecodemo.snapshot (areas -> across areas)",
        "ecodemo.store.sites -> ecodemo.models.registry (store -> areas)"]
    lazy = "def f():\n    from ecodemo.snapshot import purge_snapshot\n    from . import files\n"
    assert _imported("ecodemo.sensors", lazy, {"ecodemo.snapshot", "ecodemo.sensors.files"}) \
        == {"ecodemo.snapshot", "ecodemo.sensors.files"}


def test_imports_point_down() -> None:
    up = upward_imports(_imports())
    assert not up, "imports that point up or sideways (move the code down, or declare the " \
        "edge in ALLOWED_PEERS with its reason):\n  " + "\n  ".join(up)


def test_the_documented_layers_are_the_tested_ones() -> None:
    """docs/architecture.md's table of layers (top first) lists the same parts in the same
    layers (parenthesised words are comments) and the same edges inside a layer."""
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (?!layer\b)([^|]+?) \| ([^|]+?) \|", section, re.MULTILINE)
    documented = [(name, sorted(re.findall(r"`(\w+)/?`", re.sub(r"\([^)]*\)", "", parts))))
                  for name, parts in rows if not set(name) <= set("-")]
    assert documented[::-1] == [(name, sorted(parts)) for name, parts in LAYERS]
    edges = set(re.findall(r"(\w+) → (\w+)", section.replace("`", "")))
    assert edges == set(ALLOWED_PEERS), "docs/architecture.md's edges inside a layer differ"
