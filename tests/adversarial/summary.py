"""Summarize a run of the adversarial suite as a Markdown table, by category.

    pytest tests/adversarial --junitxml=adversarial.xml
    python tests/adversarial/summary.py adversarial.xml

Categories come from the test modules (``CATEGORIES``); ``known bugs`` are strict xfails (each
names the bug it tracks). A module missing from ``CATEGORIES`` is listed under its own name, so a
new file is never silently left out.
"""

from __future__ import annotations

import argparse
import collections
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

CATEGORIES = {
    "test_bad_input": "Bad input",
    "test_bad_input_shop": "Bad input",
    "test_faults": "Faults",
    "test_fuzz_params": "Fuzzing",
    "test_fuzz_shop": "Fuzzing",
}
ORDER = ["Bad input", "Faults", "Fuzzing"]
COLUMNS = ["tests", "passed", "failed", "known bugs (xfail)", "skipped", "time (s)"]


def outcome(case: ET.Element) -> str:
    for child in case:
        if child.tag in ("failure", "error"):
            return "failed"
        if child.tag == "skipped":
            return "known bugs (xfail)" if child.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def tally(junit: Path) -> dict[str, collections.Counter[str]]:
    rows: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    times: dict[str, float] = collections.defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        category = CATEGORIES.get(module, module or "unknown")
        rows[category]["tests"] += 1
        rows[category][outcome(case)] += 1
        times[category] += float(case.get("time") or 0)
    for category, seconds in times.items():
        rows[category]["time (s)"] = round(seconds)  # type: ignore[assignment]
    return rows


def markdown(rows: dict[str, collections.Counter[str]]) -> str:
    names = [c for c in ORDER if c in rows] + sorted(c for c in rows if c not in ORDER)
    total: collections.Counter[str] = collections.Counter()
    lines = ["| category | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name in names:
        total.update(rows[name])
        lines.append(f"| {name} | " + " | ".join(str(rows[name][c]) for c in COLUMNS) + " |")
    lines.append("| **total** | " + " | ".join(f"**{total[c]}**" for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path, help="the XML written by pytest --junitxml")
    args = parser.parse_args(argv)
    rows = tally(args.junit)
    print(markdown(rows))
    return 1 if sum(row["failed"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
