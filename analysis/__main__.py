"""``python -m analysis RESULTS [--out DIR] [--strict]``: write the report of a sweep's results.

``RESULTS`` is a local directory or a URI (``s3://bucket/prefix``, ``gs://...``, ``file://...``);
the report is always written locally.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.report import build_report
from analysis.savings import DEFAULT_FRACTIONS
from direct_ray.results.read import ResultsError


def _fractions(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1], got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"every fraction must lie in (0, 1], got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of labels, got {text!r}")
    return value


def _local_dir(text: str) -> Path:
    if "://" in text:
        raise argparse.ArgumentTypeError(f"the report is written locally; give a local directory, not {text!r}")
    return Path(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description=(
            "Turn a sweep's Parquet results into report.md: learning curves, minority labels bought, "
            "noise robustness, the effect of b_parallel, and the label-savings table (labels each "
            "strategy needs to reach random's and GALAXY's balanced accuracy). Tables are also written "
            "as savings.csv and summary.csv; figures need matplotlib."
        ),
        epilog="Example: python -m analysis results/default --out /tmp/report",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="the sweep's output (the one holding curves/): a local directory or a URI such as "
                        "s3://bucket/prefix (pyarrow's options may follow as a query, e.g. "
                        "?endpoint_override=host:9000&scheme=http)")
    p.add_argument("--out", type=_local_dir, default=None, metavar="DIR",
                   help="local directory for report.md, the CSVs and the PNGs (default: RESULTS_DIR/report for "
                        "a local directory, ./report-<name> for a URI)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, one line per file) if any results file cannot be read, instead of leaving "
                        "it out and saying so in the report")
    p.add_argument("--budget", type=_positive_int, default=None, metavar="LABELS",
                   help="compare methods at this many labels in the fixed-budget views (default: per dataset, "
                        "the last n_labeled every trial reached)")
    p.add_argument("--fractions", type=_fractions, default=list(DEFAULT_FRACTIONS), metavar="F,F,...",
                   help="savings targets as fractions of the baseline's gain from its first to its final "
                        f"balanced accuracy; the largest is the headline (default: "
                        f"{','.join(f'{f:g}' for f in DEFAULT_FRACTIONS)})")
    p.add_argument("--no-figures", action="store_true", help="write the tables only, no PNGs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    def warn(skipped) -> None:
        print(f"warning: left out {skipped}", file=sys.stderr)

    try:
        path = build_report(args.results_dir, args.out, budget=args.budget, fractions=args.fractions,
                            figures=not args.no_figures, strict=args.strict, on_skip=warn)
    except ResultsError as err:  # one line per unreadable file, when there are several
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
