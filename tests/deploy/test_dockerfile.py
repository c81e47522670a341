"""The Airflow image installs the wheel built from this repository (checked statically).

The test builds the wheel the way the Dockerfile's first stage does (`pip wheel --no-deps .`,
hatchling fetched by pip's build isolation, from a copy of only what that stage COPYs through
.dockerignore) and compares its metadata with what the Dockerfile
names: file name and version, Python of the base image vs requires-python, console script.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.deploy.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def _args() -> dict[str, str]:
    """ARG NAME=default lines of the Dockerfile."""
    return dict(re.findall(r"^ARG\s+([A-Z_]+)=(\S+)", DOCKERFILE.read_text(), re.MULTILINE))


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: args[m.group(1)], text)


def _dockerignore_keeps(path: str) -> bool:
    """Whether .dockerignore (an allow-list; the last matching pattern wins) sends ``path``."""
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    keep = True
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
            keep = negate
    return keep


def _wheel_stage_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY in the Dockerfile's wheel stage."""
    text = DOCKERFILE.read_text()
    stage = text[text.index(" AS wheel"):]
    stage = stage[:stage.index("\nFROM ")]
    out = []
    for line in re.findall(r"^COPY (?!--from)(.*)$", stage, re.MULTILINE):
        parts = [p for p in line.split() if not p.startswith("--")]
        out.append((parts[:-1], parts[-1]))
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The build context as the wheel stage sees it: only the COPYed paths .dockerignore lets in.
    context = tmp_path_factory.mktemp("context")
    for sources, dest in _wheel_stage_copies():
        for src in sources:
            # COPY a b ./ puts files into the folder; COPY src ./src copies the folder's content
            to = context / dest / Path(src).name if dest.endswith("/") else context / dest
            files = ([(REPO / src, to)] if (REPO / src).is_file() else
                     [(f, to / f.relative_to(REPO / src)) for f in (REPO / src).rglob("*")
                      if f.is_file()])
            for f, target in files:
                if _dockerignore_keeps(f.relative_to(REPO).as_posix()):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q",
         "--wheel-dir", str(out), str(context)],
        capture_output=True, text=True, timeout=600, check=False)
    if built.returncode != 0 and "hatchling" in built.stderr and "No matching" in built.stderr:
        pytest.skip("hatchling (the build backend) could not be fetched from the package index")
    assert built.returncode == 0, built.stderr
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _metadata(wheel: Path) -> tuple[dict[str, str], str, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
        eps = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    return {k: str(v) for k, v in meta.items()}, eps, names


def test_wheel_matches_what_the_dockerfile_installs(wheel: Path) -> None:
    meta, entry_points, names = _metadata(wheel)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["Name"] == project["name"] == "ecodemo"
    assert meta["Version"] == project["version"]
    args = _args()
    assert args["ECODEMO_VERSION"] == meta["Version"], "bump ARG ECODEMO_VERSION in Dockerfile"
    text = DOCKERFILE.read_text()
    installed = {_expand(m, args) for m in re.findall(r"/tmp/wheels/(\S+\.whl)", text)}
    assert installed == {wheel.name}, (installed, wheel.name)
    # the base image's Python satisfies requires-python
    image = args["AIRFLOW_IMAGE"]
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", image)
    assert m, image
    assert Version(m.group(2)) in SpecifierSet(meta["Requires-Python"])
    assert m.group(1) == "3.3.2"
    airflow_extra = next(d for d in project["optional-dependencies"]["airflow"]
                         if d.startswith("apache-airflow"))
    assert Version(m.group(1)) in SpecifierSet(airflow_extra.removeprefix("apache-airflow"))
    # the console script the image runs (`ecodemo --help` at build, `ecodemo db ...` at init)
    assert re.search(r"^ecodemo\s*=\s*ecodemo\.cli:main$", entry_points, re.MULTILINE)
    assert "ecodemo --help" in text
    compose = (REPO / "docker-compose.yml").read_text()
    assert "ecodemo db upgrade && ecodemo db roles" in compose
    assert f"image: ecodemo-airflow:{meta['Version']}" in compose
    # what the init service needs is inside the wheel
    for needed in ("ecodemo/store/migrations/001_core.sql", "ecodemo/store/roles.py",
                   "ecodemo/cli/db.py"):
        assert needed in names, needed


def test_install_keeps_airflow_pins() -> None:
    """Constrained to the image's own frozen set, then `pip check`: Airflow's pins never move."""
    text = DOCKERFILE.read_text()
    run = " ".join(re.findall(r"^RUN (.*(?:\n .*)*)", text, re.MULTILINE))
    assert "pip list --format=freeze > /tmp/airflow-pins.txt" in run
    assert re.search(r"pip install [^&]*--constraint /tmp/airflow-pins\.txt", run)
    assert "pip check" in run
    assert re.search(r"pip wheel [^&]*--no-deps", run)
    assert not re.search(r"pip install [^&]*(--upgrade|-U\b|--force-reinstall)", run)


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    """Every COPY source exists and .dockerignore (an allow-list) lets it through."""
    sources = []
    for line in re.findall(r"^COPY (?!--from)(.*)$", DOCKERFILE.read_text(), re.MULTILINE):
        parts = [p for p in line.split() if not p.startswith("--")]
        sources += parts[:-1]
    assert {"pyproject.toml", "README.md", "src"} <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), src
        assert _dockerignore_keeps(src), f".dockerignore excludes {src}"
    assert not any(_dockerignore_keeps(p) for p in (".env", ".venv", ".git"))
