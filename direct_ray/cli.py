"""The command lines: ``python -m direct_ray.sweep`` / ``direct-ray-sweep`` (run a study) over :func:`run_sweep`.

The library logs to the ``direct_ray`` logger; this module sends it to the terminal (per-round
lines with ``--verbose``), turns a user's mistake into one ``error:`` line and exit status 2,
prints where the results are with a short summary table, and builds the analysis report.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from typing import Sequence

from direct_ray.sweep import DEFAULT_STUDY


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m direct_ray.sweep",
        description="Run an active-learning study (every grid combination is one trial) on Ray Tune; "
        "learning curves and selections are written as Parquet.",
        epilog="Examples:\n"
        "  python -m direct_ray.sweep                       # the embedded default study\n"
        "  python -m direct_ray.sweep sweeps/noise_robustness.yaml --set rounds=5\n"
        "  python -m direct_ray.sweep --set 'grid.seed=[0,1,2]' --output results/more-seeds\n"
        "  python -m direct_ray.sweep sweeps/paper_table1.yaml --address auto   # on a cluster\n"
        "  python -m direct_ray.sweep --resume              # continue an interrupted sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", nargs="?", default=str(DEFAULT_STUDY), help="study YAML (default: sweeps/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study key (dotted, value parsed as YAML), e.g. --set rounds=5; repeatable")
    parser.add_argument("--output", help="results directory or URI, e.g. s3://bucket/prefix on a cluster "
                        "(default: results/<study name>); Tune's checkpoints are kept there too")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --output; finished trials are not "
                        "rerun; added grid values or larger rounds grow it")
    parser.add_argument("--address", help="Ray cluster address (e.g. 'auto' on a cluster node); default: a local Ray")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray session (default: all)")
    parser.add_argument("--no-report", action="store_true", help="do not build the analysis report at the end")
    parser.add_argument("--verbose", action="store_true", help="also print a line per trial and round")
    parser.add_argument("--dry-run", action="store_true", help="print the trials, what each reserves, how many run at "
                        "once on the cluster and every problem found, then stop without starting a trial (with "
                        "--resume: as the resumed sweep would run them)")
    return parser.parse_args(argv)


def resume_command(args: argparse.Namespace, output: str) -> str:
    """The command that continues this sweep: the same study and settings, its output, ``--resume``."""
    words = ["python", "-m", "direct_ray.sweep"]
    if args.study != str(DEFAULT_STUDY):
        words.append(args.study)
    for override in args.overrides:
        words += ["--set", override]
    words += ["--output", output]
    for option in ("address", "num_cpus"):
        if getattr(args, option) is not None:
            words += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    words += [flag for flag, on in (("--no-report", args.no_report), ("--verbose", args.verbose)) if on]
    return shlex.join([*words, "--resume"])


class _Stdout(logging.Handler):
    """Plain lines on whatever ``sys.stdout`` is when they are logged (the live progress line redirects it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stdout, flush=True)


def configure_logging(verbose: bool) -> None:
    """Send the ``direct_ray`` logger to stdout, plain lines; per-trial and per-round lines only when ``verbose``."""
    logger = logging.getLogger("direct_ray")
    for handler in [h for h in logger.handlers if isinstance(h, _Stdout)]:
        logger.removeHandler(handler)
    handler = _Stdout(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def summary_table(output: str) -> str:
    """Final balanced accuracy and minority labels per strategy (mean over trials), as text."""
    import pyarrow.compute as pc

    from direct_ray.results.read import read_table

    table = read_table(output, "curves")
    last = pc.max(table["round"]).as_py()
    final = table.filter(pc.equal(table["round"], last)).to_pylist()
    by_strategy: dict[str, list[dict]] = {}
    for row in final:
        by_strategy.setdefault(row["strategy"], []).append(row)
    lines = [f"{'strategy':>14}  {'trials':>6}  {'final balanced acc':>18}  {'minority labels':>15}  (n_labeled={final[0]['n_labeled']})"]
    for strategy, rows in sorted(by_strategy.items(), key=lambda kv: -sum(r["balanced_accuracy"] for r in kv[1]) / len(kv[1])):
        acc = sum(r["balanced_accuracy"] for r in rows) / len(rows)
        minority = sum(r["n_minority_labels"] for r in rows) / len(rows)
        lines.append(f"{strategy:>14}  {len(rows):>6}  {acc:>18.3f}  {minority:>15.1f}")
    return "\n".join(lines)


def _report(output: str) -> None:
    """Build the analysis report (by import; for a URI output it is written locally, see analysis)."""
    command = f"python -m analysis {shlex.quote(output)}"
    try:
        from analysis.report import build_report
    except ImportError:
        print(f"\nanalyse with: {command}  (the analysis package is not importable here)")
        return
    print(f"\nbuilding the report: {command}", flush=True)
    print(f"report: {build_report(output)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    from direct_ray.config import ConfigError
    from direct_ray.data.spec import DatasetUnavailableError
    from direct_ray.results.layout import OutputError, SweepRecordError, join
    from direct_ray.sweep import PreflightError, SweepInterrupted, dry_run, run_sweep

    user_errors = (ConfigError, SweepRecordError, OutputError, PreflightError, DatasetUnavailableError, ValueError,
                   FileNotFoundError)
    try:
        if args.dry_run:
            plan = dry_run(args.study, args.output, overrides=args.overrides, resume=args.resume,
                           address=args.address, num_cpus=args.num_cpus)
            print(plan.describe())
            return 2 if plan.problems else 0
        result = run_sweep(args.study, args.output, overrides=args.overrides, resume=args.resume,
                           address=args.address, num_cpus=args.num_cpus, handle_signals=True, live_progress=True)
    except user_errors as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except SweepInterrupted as stop:
        print(f"\n{stop}; the rounds written so far are kept. Continue with:\n  {resume_command(args, stop.output)}",
              file=sys.stderr, flush=True)
        if stop.signum == signal.SIGTERM:
            # Ray's own processes are ending too: its exit hook would wait for them. Stop now.
            sys.stdout.flush()
            os._exit(stop.exit_status)
        return stop.exit_status
    output = result.output
    print(f"\nresults: {output}\n  curves:     {join(output, 'curves')}\n  selections: {join(output, 'selections')}")
    if result.completed:
        print("\n" + summary_table(output))
        if args.no_report:
            print(f"\nanalyse with: python -m analysis {shlex.quote(output)}")
        else:
            _report(output)
    if result.failed:
        print(f"\n{len(result.failed)} trial(s) failed:", file=sys.stderr)
        for trial_id, error in result.failed.items():
            print(f"  {trial_id}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
