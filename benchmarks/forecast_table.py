"""Markdown accuracy table for docs/forecasting.md from the output of benchmarks/forecast.py.

    python benchmarks/forecast.py --skip-mlforecast --skip-speed > last.txt
    python benchmarks/forecast.py --skip-mlforecast --skip-speed --shift-days 120 > earlier.txt
    python benchmarks/forecast_table.py "last 4 weeks=last.txt" "120 days earlier=earlier.txt"

One row per kind and rung (the rung the ladder chose marked *), one column group per period:
skill at 1..24 h / day-ahead skill / p10-p90 coverage (solar: daylight; nights apart).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROW = re.compile(r"^\s{3}(\S+(?: \d+m)?)\s+(\d+)\s+(\S+)( \*)?\s+(.*)$")


def parse(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if not m or m.group(1) == "kind":
            continue
        cells = m.group(5).split()
        if len(cells) < 9:
            continue
        out[(f"{m.group(1)} ({m.group(2)})", m.group(3))] = {
            "chosen": "*" if m.group(4) else "", "skill": cells[2], "cover": cells[3],
            "night": cells[4], "da_skill": cells[5], "da_cover": cells[6]}
    return out


def main() -> int:
    periods = [(label, parse(Path(f))) for label, f in (a.split("=", 1) for a in sys.argv[1:])]
    keys = list(dict.fromkeys(k for _, rows in periods for k in rows))
    head = "| kind (sensors) | rung | " + " | ".join(
        f"{label}: skill 1-24 h / day-ahead / coverage" for label, _ in periods) + " |"
    print(head)
    print("|" + "---|" * (2 + len(periods)))
    for key in keys:
        cells = []
        for _, rows in periods:
            r = rows.get(key)
            if r is None:
                cells.append("-")
                continue
            night = f" (night {r['night']})" if r["night"] != "-" else ""
            cells.append(f"{r['skill']} / {r['da_skill']} / {r['cover']}{night}{r['chosen']}")
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
