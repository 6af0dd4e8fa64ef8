"""Build ``report.md`` (tables, figures, what was run, versions) from a sweep's results directory.

``build_report(results_dir, out_dir)`` is the one entry point; ``python -m analysis`` and the
sweep's final step call it. It reads only the Parquet files (the sweep need not be running),
from a local path or a URI (``s3://``, ``gs://``, ``file://``), and writes, always locally,
``report.md``, ``savings.csv``, ``summary.csv`` and, if matplotlib is installed, the PNG
figures that ``report.md`` embeds by relative path. A file that cannot be read is left out
and named in the report, unless ``strict`` makes it an error.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

from analysis import plots
from analysis.annotation_time import annotation_section
from analysis.budget import budget_summaries
from analysis.curves import Groups, TrialCurve, group_curves, strategies, trial_curves
from analysis.savings import BASELINES, DEFAULT_FRACTIONS, RULE, savings_table
from analysis.tables import markdown_table, savings_csv, savings_markdown, summary_csv, summary_markdown
from direct_ray.results.layout import is_uri
from direct_ray.results.read import SkippedFile, UnreadableFiles, read_results
from direct_ray.results.schema import CURVES, SCHEMA_VERSION

REPORT_NAME = "report.md"


def _what_was_run(meta: Mapping, groups: Groups, curves: Sequence[TrialCurve]) -> str:
    study = meta["study"] if isinstance(meta["study"], Mapping) else {}
    settings = list(groups)
    methods = sorted({m for ms in groups.values() for m in ms})
    seeds = sorted({c.seed for c in curves})
    lines = [
        f"- Study **{study.get('name', 'unnamed')}**"
        + (f" (sweep `{study['sweep_id']}`)" if "sweep_id" in study else "")
        + (f": {study['description']}" if study.get("description") else ""),
        f"- {len(curves)} trials{_planned(study)}: {_count(len(settings), 'setting')} x "
        f"{_count(len(methods), 'method')} x {_count(len(seeds), 'seed')} ({', '.join(map(str, seeds))}).",
        f"- Datasets: {', '.join(sorted({s.dataset for s in settings}))}; strategies: {', '.join(strategies(groups))}; "
        f"b_parallel: {', '.join(str(b) for b in sorted({m.b_parallel for m in methods}))}.",
        f"- Noise settings: {', '.join(sorted({s.noise_label for s in settings}))}.",
        *_class_lines(meta.get("classes", {}), curves),
    ]
    for key in ("rounds", "b_train", "initial_size"):
        if key in study:
            lines.append(f"- {key}: {study[key]}")
    if "model" in study:
        lines.append(f"- model: `{json.dumps(study['model'], sort_keys=True)}`")
    unfinished = _unfinished(meta["trials"], curves)
    if unfinished:
        lines.append(f"- **{len(unfinished)} unfinished trial(s)** (averages use the rounds every seed reached): "
                     + "; ".join(unfinished))
    if meta["disagreements"]:
        lines.append("- **Warning:** the files disagree on "
                     + ", ".join(f"{k} ({n} distinct values)" for k, n in meta["disagreements"].items())
                     + "; the most common value is shown.")
    observed = [c.trial_id for c in curves if c.minority_from_observed]
    if observed:
        lines.append(f"- {len(observed)} trial(s) lack `n_minority_labels`; their minority counts are derived "
                     "from `n_labeled_per_class`, which counts observed (possibly noisy) labels.")
    text = "\n".join(lines)
    if study:
        text += "\n\nThe study configuration stored in the results:\n\n```yaml\n" + yaml.safe_dump(
            dict(study), sort_keys=False, default_flow_style=None).rstrip() + "\n```"
    return text


def _class_lines(classes: Mapping[str, object], curves: Sequence[TrialCurve]) -> list[str]:
    """One line per dataset: which original classes became which study class (class K-1 is the majority)."""
    by_dataset: dict[str, list] = {}
    for curve in curves:
        if isinstance(classes.get(curve.trial_id), list):
            by_dataset.setdefault(curve.setting.dataset, classes[curve.trial_id])
    lines = []
    for dataset, mapping in sorted(by_dataset.items()):
        k = max(mapping) + 1
        parts = [f"{c}{' (majority)' if c == k - 1 else ''} <- {_runs([o for o, s in enumerate(mapping) if s == c])}"
                 for c in range(k)]
        lines.append(f"- Classes of {dataset} (study class <- original classes): {'; '.join(parts)}.")
    return lines


def _runs(values: Sequence[int]) -> str:
    """Sorted integers as runs: ``[0, 2, 3, 4]`` -> ``0, 2-4``."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _planned(study: Mapping) -> str:
    """How many trials the stored study grid plans (empty text when the results do not say)."""
    grid = study.get("grid")
    if not isinstance(grid, Mapping) or not grid:
        return ""
    planned = math.prod(len(v) if isinstance(v, list) else 1 for v in grid.values())
    return f" with results, of {planned} planned by the study"


def _unfinished(trials: Mapping[str, object], curves: Sequence[TrialCurve]) -> list[str]:
    out = []
    for curve in curves:
        config = trials.get(curve.trial_id)
        if not isinstance(config, Mapping) or not all(k in config for k in ("initial_size", "rounds", "b_train")):
            continue
        expected = config["initial_size"] + config["rounds"] * config["b_train"]
        if curve.n_labeled[-1] < expected:
            out.append(f"`{curve.trial_id}` ({int(curve.n_labeled[-1])} of {expected} labels)")
    return out


def _versions(meta: Mapping) -> str:
    versions = meta["versions"]
    text = f"Results schema version {SCHEMA_VERSION} (this reader). "
    if isinstance(versions, Mapping) and versions:
        return text + "Packages recorded by the sweep:\n\n" + markdown_table(
            ("package", "version"), [(k, str(v)) for k, v in sorted(versions.items())])
    return text + "The results record no package versions."


def _figure(figures: Mapping[str, Path], name: str, out_dir: Path, alt: str, missing: str) -> str:
    if name in figures:
        return f"![{alt}]({figures[name].relative_to(out_dir).as_posix()})"
    return f"_{missing}_"


def results_name(results_dir: Path | str) -> str:
    """The last component of a results path or URI (without a URI's ``?query``)."""
    text = str(results_dir)
    if is_uri(text):
        text = text.split("://", 1)[1].split("?", 1)[0]
    return Path(text.rstrip("/")).name or "results"


_SECRETS = ("access_key", "secret_key", "session_token")


def shown(results_dir: Path | str) -> str:
    """``results_dir`` as the report shows it: a URI's credentials in its query are replaced by ``***``."""
    text = str(results_dir)
    if not is_uri(text) or "?" not in text:
        return text
    base, query = text.split("?", 1)
    params = [p if p.split("=", 1)[0] not in _SECRETS else f"{p.split('=', 1)[0]}=***" for p in query.split("&")]
    return f"{base}?{'&'.join(params)}"


def default_out_dir(results_dir: Path | str) -> Path:
    """``RESULTS_DIR/report`` for a local results directory, ``./report-<name>`` for a URI."""
    if is_uri(results_dir):
        return Path(f"report-{results_name(results_dir)}")
    return Path(results_dir) / "report"


def _skipped_section(skipped: Sequence[SkippedFile]) -> str:
    lines = [f"**{len(skipped)} file(s) could not be read and were left out**; the tables and figures are "
             "built from the other files:", ""]
    lines += [f"- `{s.path}`: {s.reason}" for s in skipped]
    return "\n".join(lines)


def build_report(
    results_dir: Path | str,
    out_dir: Path | str | None = None,
    *,
    budget: int | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    figures: bool = True,
    strict: bool = False,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> Path:
    """Write the report for ``results_dir`` (a local path or a URI) into the local ``out_dir``.

    ``out_dir`` defaults to ``results_dir/report`` for a local directory and to
    ``./report-<name>`` for a URI. ``budget`` fixes the labels at which methods are compared
    in the fixed-budget views (default: per dataset, the last ``n_labeled`` every trial
    reached); ``fractions`` are the savings targets (see :mod:`analysis.savings`). A file that
    cannot be read is left out, passed to ``on_skip`` and listed in the report; with
    ``strict`` any such file raises :class:`UnreadableFiles` (naming every one) and nothing is
    written. Returns the path of ``report.md``. Raises
    :class:`direct_ray.results.read.ResultsError` for unusable results.
    """
    if out_dir is not None and is_uri(out_dir):
        raise ValueError(f"the report is written locally; out_dir must be a local directory, not {out_dir}")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(results_dir)
    fractions = sorted({float(f) for f in fractions})
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions}")
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be a positive number of labels, got {budget}")
    results = read_results(results_dir, CURVES, skip_unreadable=True)
    if strict and results.skipped:
        raise UnreadableFiles(results.skipped)
    for skipped in results.skipped:
        if on_skip is not None:
            on_skip(skipped)
    curves = trial_curves(results.table)
    meta = results.metadata
    groups = group_curves(curves)
    summaries = budget_summaries(groups, budget)
    savings = savings_table(groups, BASELINES, fractions)
    out_dir.mkdir(parents=True, exist_ok=True)
    savings_csv(savings, out_dir / "savings.csv")
    summary_csv(summaries, out_dir / "summary.csv")

    have_plt = figures and plots.pyplot() is not None
    drawn = plots.all_figures(groups, summaries, out_dir) if have_plt else {}
    no_plot = ("matplotlib is not installed, so this figure was not drawn (pip install matplotlib)"
               if figures else "figures were turned off")
    headline = max(fractions)
    baselines_run = [b for b in BASELINES if b in strategies(groups)]
    budgets = sorted({(s.setting.dataset, s.budget.low, s.budget.high) for s in summaries})
    budget_text = "; ".join(f"{d}: {hi} labels (AUC over {lo}-{hi})" for d, lo, hi in budgets)
    target_words = ("the final seed-averaged balanced accuracy" if headline == 1 else
                    f"{headline:.0%} of the way from the first to the final seed-averaged balanced accuracy")
    regenerate = f"python -m analysis {shlex.quote(shown(results_dir))}" + (
        "" if out_dir == default_out_dir(results_dir) else f" --out {shlex.quote(str(out_dir))}")
    study_name = meta["study"].get("name") if isinstance(meta["study"], Mapping) else None
    has_sequential = any(s.effective_b_parallel < s.method.b_parallel for s in summaries)

    sections = [
        f"# Active-learning results: {study_name or results_name(results_dir)}",
        f"Read from `{shown(results_dir)}`. Tables as CSV: [savings.csv](savings.csv), [summary.csv](summary.csv). "
        f"Regenerate with `{regenerate}`.",
        *(["## Files left out\n\n" + _skipped_section(results.skipped)] if results.skipped else []),
        "## What was run\n\n" + _what_was_run(meta, groups, curves),
        "## Label savings (headline)\n\n"
        + (f"Labels each method needs to reach {target_words} of {' and of '.join(baselines_run)}, "
           "and the saving `1 - labels(method) / labels(baseline)`. How the numbers are computed is under "
           "*How savings are computed* below.\n\n" + savings_markdown(savings, headline)
           if baselines_run else "_Neither random nor galaxy was run, so there is no baseline to save labels "
                                 "against._"),
        "## Learning curves\n\nBalanced accuracy on the clean test split versus labels bought; one panel per "
        "dataset and noise setting, one line per strategy (colour) and b_parallel (line style).\n\n"
        + _figure(drawn, "learning_curves", out_dir, "learning curves", no_plot),
        "## Minority labels bought\n\nLabels whose true class is a minority class (classes 0..K-2), versus "
        "labels bought. The dotted line is a perfectly class-balanced selection.\n\n"
        + _figure(drawn, "minority_labels", out_dir, "minority labels", no_plot),
        f"## Fixed-budget summary\n\nBudget per dataset: {budget_text}. Mean ± standard error over seeds; AUC is "
        "the area under the balanced-accuracy curve divided by the label range (the mean balanced accuracy over "
        "it).\n\n" + summary_markdown(summaries),
        "## Noise robustness\n\n"
        + _figure(drawn, "noise_robustness", out_dir, "noise robustness",
                  no_plot if any(s.setting.noise_model != "none" for s in summaries)
                  else "The study has no noisy setting, so there is no noise-robustness figure."),
        "## Effect of b_parallel\n\n"
        + ("Some strategies cannot use parallel annotators: GALAXY runs sequentially whatever `b_parallel` "
           "asks, and its rows say *effective b_parallel 1 (sequential)*; its b_parallel > 1 runs are repeats of "
           "the sequential algorithm, shown as hollow markers.\n\n" if has_sequential else "")
        + (_figure(drawn, "b_parallel", out_dir, "effect of b_parallel on accuracy", no_plot)
           + "\n\nSelection wall time per round (asking the annotators and waiting for them):\n\n"
           + _figure(drawn, "b_parallel_time", out_dir, "effect of b_parallel on selection time", no_plot)
           if len({m.b_parallel for ms in groups.values() for m in ms}) > 1
           else "_The study has a single b_parallel, so there is no b_parallel figure._"),
        *filter(None, [annotation_section(results.table, groups, out_dir, have_plt, fractions)]),
        "## Label savings at every target\n\n" + (savings_markdown(savings) if baselines_run else "_None._"),
        "## How savings are computed\n\n" + RULE,
        "## Versions\n\n" + _versions(meta),
    ]
    path = out_dir / REPORT_NAME
    path.write_text("\n\n".join(sections) + "\n")
    return path


__all__ = ["REPORT_NAME", "build_report", "default_out_dir"]
