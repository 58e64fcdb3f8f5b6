"""Every figure in the README traces to a committed results file with its machine, versions and
command: the generated sections are regenerated here and compared byte for byte."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))

import summary  # noqa: E402

from benchmarks import report  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_benchmark_section_is_generated_from_the_published_results() -> None:
    published = ROOT / report.PUBLISHED
    assert published.exists(), f"{report.PUBLISHED} is missing: python -m benchmarks.report --publish"
    results = json.loads(published.read_text())
    assert {"created", "command", "machine", "versions", "inprocess", "http"} <= set(results)
    assert report.current_section(README) == report.readme_section(published), (
        f"README.md's benchmark section is not what {report.PUBLISHED} gives:"
        " run python -m benchmarks.report --readme (never edit the section by hand)"
    )


def test_the_reliability_section_is_generated_from_the_published_results() -> None:
    published = ROOT / summary.PUBLISHED
    assert published.exists(), f"{summary.PUBLISHED} is missing: make reliability"
    data = json.loads(published.read_text())
    assert {"created", "machine", "versions", "adversarial", "soak"} <= set(data)
    assert all(row.get("failed", 0) == 0 for row in data["adversarial"].values())
    assert summary.current_section(README) == summary.readme_section(published), (
        f"README.md's Reliability section is not what {summary.PUBLISHED} gives:"
        " run python tests/adversarial/summary.py --readme (never edit the section by hand)"
    )


def test_the_cost_of_lax_bodies_is_quoted_from_the_published_results() -> None:
    published = json.loads((ROOT / "benchmarks" / "published" / "strictness.json").read_text())
    ratio, (low, high) = published["lax_over_strict"], published["interval_95"]
    quoted = (
        f"lax bodies cost {(ratio - 1) * 100:+.1f}% on the `body` scenario "
        f"(95% interval {(low - 1) * 100:+.1f}% to {(high - 1) * 100:+.1f}%)"
    )
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert quoted in readme
