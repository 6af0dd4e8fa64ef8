"""What writing a trial's results files costs, round by round.

``python -m direct_ray.benchmarks.results_write [--rounds 40] [--labels 1000] [--classes 100]``

A write-only benchmark: no training, no Ray. One :class:`~direct_ray.results.write.TrialWriter`
receives a synthetic trial the way the round loop hands it over (after round ``r``, every
curve row and selection row so far), and each round's write is waited for before the next,
so the times add up to the trial's whole write cost (Arrow's one-time start-up in a
process is paid before the clock starts). The defaults are CIFAR-100's budget:
40 rounds after the initial batch, 1,000 labels a round, 100 classes (41 curve rows and
41,000 selection rows in the end).

Reported: the seconds spent writing (every round, the first and last round alone, and the
final step when the trial finishes), the bytes handed to the operating system's ``write``
calls (``wchar`` of ``/proc/self/io``, so Linux only; other systems print "n/a"), and the
files and bytes left on disk.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from direct_ray.results.schema import CURVES, SELECTIONS
from direct_ray.results.write import TrialWriter, to_table

_DATASET, _STRATEGY, _TRIAL = "cifar100-k100", "direct", "cifar100-k100_direct_bp5_none_s0_0123abcd"


def _written_bytes() -> int | None:
    """Bytes this process has passed to ``write`` so far, or None where /proc is missing."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def curve_row(round_: int, labels: int, classes: int, rng: np.random.Generator) -> dict:
    """One synthetic curve row with every column of the curves table."""
    n = labels * (round_ + 1)
    per_class = rng.multinomial(n, np.full(classes, 1 / classes)).tolist()
    acc = float(rng.uniform(0.3, 0.9))
    return {
        "sweep_id": "bench", "trial_id": _TRIAL, "num_classes": classes, "imbalance_ratio": 0.1, "seed": 0,
        "b_parallel": 5, "b_train": labels, "noise_model": "none", "noise_rate": 0.0, "round": round_,
        "n_labeled": n, "n_labeled_per_class": per_class, "n_noisy_labels": 0, "balanced_accuracy": acc,
        "accuracy": acc, "worst_class_accuracy": acc / 2, "minority_accuracy": acc, "train_seconds": 60.0,
        "score_seconds": 5.0, "select_seconds": 2.0, "effective_b_parallel": 5, "n_minority_labels": n // 2,
        "per_class_accuracy": rng.uniform(0, 1, classes).tolist(), "round_seconds": 70.0, "model": "resnet18",
        "noise_config": json.dumps({"model": "none"}), "device": "cuda:NVIDIA H200",
        "annotation_mode": "sync", "annotation_seconds": 0.0, "annotator_busy_seconds": 0.0, "labels_in_flight": 0,
        "annotation_config": json.dumps({"mode": "sync"}),
    }


def selection_rows(round_: int, labels: int, classes: int, rng: np.random.Generator) -> list[dict]:
    """``labels`` synthetic selection rows of one round."""
    first = labels * round_
    truth = rng.integers(0, classes, labels)
    return [
        {"trial_id": _TRIAL, "round": round_, "order": first + i, "pool_index": int(p), "true_label": int(t),
         "observed_label": int(t), "annotator": i % 5, "answered_at": 0.0}
        for i, (p, t) in enumerate(zip(rng.permutation(50_000)[:labels], truth))
    ]


def run(output: Path, rounds: int, labels: int, classes: int) -> dict:
    """Write one synthetic trial into ``output``; returns the measurements."""
    rng = np.random.default_rng(0)
    metadata = {"direct_ray.study": {"name": "bench", "rounds": rounds}, "direct_ray.trial": {"trial_id": _TRIAL},
                "direct_ray.versions": {"direct-ray": "bench"}}
    # Arrow's first conversion in a process pays a one-time start-up cost; keep it out.
    to_table(CURVES, [curve_row(0, labels, classes, rng)])
    to_table(SELECTIONS, selection_rows(0, 1, classes, rng))
    rng = np.random.default_rng(0)
    curve: list[dict] = []
    selections: list[dict] = []
    per_round = []
    start_bytes = _written_bytes()
    with TrialWriter(output, dataset=_DATASET, strategy=_STRATEGY, trial_id=_TRIAL, metadata=metadata) as writer:
        for round_ in range(rounds + 1):
            selections.extend(selection_rows(round_, labels, classes, rng))
            curve.append(curve_row(round_, labels, classes, rng))
            start = time.perf_counter()
            writer.submit(curve, selections)
            writer.flush()
            per_round.append(time.perf_counter() - start)
        start = time.perf_counter()
        finish = getattr(writer, "finish", None)
        if finish is not None:
            finish(curve, selections)
        finish_seconds = time.perf_counter() - start
    end_bytes = _written_bytes()
    files = [p for p in output.rglob("*") if p.is_file()]
    return {
        "rounds": rounds, "labels_per_round": labels, "classes": classes,
        "curve_rows": len(curve), "selection_rows": len(selections),
        "write_seconds": sum(per_round) + finish_seconds, "first_round_seconds": per_round[0],
        "last_round_seconds": per_round[-1], "finish_seconds": finish_seconds,
        "bytes_written": None if start_bytes is None or end_bytes is None else end_bytes - start_bytes,
        "files_on_disk": len(files), "bytes_on_disk": sum(p.stat().st_size for p in files),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m direct_ray.benchmarks.results_write",
        description="Time and bytes of writing one trial's results files with TrialWriter (synthetic rows, "
                    "no training). Defaults: CIFAR-100's budget of 40 rounds x 1,000 labels, 100 classes.",
    )
    p.add_argument("--rounds", type=int, default=40, help="rounds after the initial batch (default 40)")
    p.add_argument("--labels", type=int, default=1000, help="labels bought per round and initially (default 1000)")
    p.add_argument("--classes", type=int, default=100, help="classes (length of the per-class columns; default 100)")
    p.add_argument("--output", type=Path, default=None,
                   help="results directory to write into (default: a temporary directory, removed afterwards)")
    p.add_argument("--json", action="store_true", help="print the measurements as one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.output is not None:
        result = run(args.output, args.rounds, args.labels, args.classes)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(tmp), args.rounds, args.labels, args.classes)
    if args.json:
        print(json.dumps(result))
        return 0
    mib = 1024 * 1024
    written = "n/a" if result["bytes_written"] is None else f"{result['bytes_written'] / mib:.1f} MiB"
    print(f"{result['rounds']} rounds x {result['labels_per_round']} labels, {result['classes']} classes: "
          f"{result['curve_rows']} curve rows, {result['selection_rows']} selection rows")
    print(f"write time     {result['write_seconds']:.3f} s in all (first round {result['first_round_seconds'] * 1e3:.1f} ms, "
          f"last round {result['last_round_seconds'] * 1e3:.1f} ms, finishing {result['finish_seconds'] * 1e3:.1f} ms)")
    print(f"bytes written  {written}")
    print(f"on disk        {result['files_on_disk']} files, {result['bytes_on_disk'] / mib:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
