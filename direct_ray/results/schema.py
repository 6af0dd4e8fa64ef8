"""The Parquet schema of a sweep's results: a contract that analysis and outside tools rely on.

Two tables, one file per finished trial each, hive-partitioned by dataset and strategy:

* ``curves/dataset=<d>/strategy=<s>/<trial_id>.parquet``: one row per trial x round.
* ``selections/dataset=<d>/strategy=<s>/<trial_id>.parquet``: one row per label bought.

While a trial runs, its rows are in one file per round instead,
``<trial_id>.round-<NNNNN>.parquet`` (see :mod:`direct_ray.results.layout`).

The partition columns ``dataset`` and ``strategy`` live in the directory names, not inside
the files (hive convention: pandas, ``pyarrow.dataset`` and DuckDB refuse a column that is
both in the path and in the file), so read the directory, not a single file, to get them.
``FILE_SCHEMAS`` are the schemas of the files themselves.

Columns may be added in later schema versions, never renamed or removed. Every file carries
``SCHEMA_VERSION`` (and the study configuration, and package versions) in its key-value
metadata under the keys below.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

# File-level key-value metadata (bytes keys in Parquet; all values are UTF-8 JSON or text).
META_SCHEMA_VERSION = "direct_ray.schema_version"
META_TABLE = "direct_ray.table"  # "curves" or "selections"
META_STUDY = "direct_ray.study"  # the study configuration, JSON
META_TRIAL = "direct_ray.trial"  # this trial's configuration, JSON
META_VERSIONS = "direct_ray.versions"  # package versions, JSON
META_RUNTIME = "direct_ray.runtime"  # where the trial trained: device, torch and CUDA versions, JSON
# The dataset's study class of each original class, a JSON list indexed by the original label:
# [1, 0] means original class 0 became study class 1 (the majority) and original 1 became 0.
META_CLASSES = "direct_ray.classes"

CURVES = "curves"
SELECTIONS = "selections"

CURVE_SCHEMA = pa.schema(
    [
        # --- the contract columns ---
        ("sweep_id", pa.string()),
        ("trial_id", pa.string()),
        ("dataset", pa.string()),
        ("num_classes", pa.int32()),
        ("imbalance_ratio", pa.float64()),
        ("strategy", pa.string()),
        ("seed", pa.int64()),
        ("b_parallel", pa.int32()),
        ("b_train", pa.int32()),
        ("noise_model", pa.string()),
        ("noise_rate", pa.float64()),
        ("round", pa.int32()),
        ("n_labeled", pa.int64()),
        ("n_labeled_per_class", pa.list_(pa.int64())),
        ("n_noisy_labels", pa.int64()),
        ("balanced_accuracy", pa.float64()),
        ("accuracy", pa.float64()),
        ("worst_class_accuracy", pa.float64()),
        ("minority_accuracy", pa.float64()),
        ("train_seconds", pa.float64()),
        ("score_seconds", pa.float64()),
        ("select_seconds", pa.float64()),
        # --- additions ---
        # b_parallel actually used (1 for sequential-only strategies such as GALAXY).
        ("effective_b_parallel", pa.int32()),
        # labels bought whose *true* class is a minority class (0..K-2), cumulative.
        ("n_minority_labels", pa.int64()),
        # per-class recall on the clean test split (index = class).
        ("per_class_accuracy", pa.list_(pa.float64())),
        # whole round wall time, including Ray overhead.
        ("round_seconds", pa.float64()),
        ("model", pa.string()),
        # full noise configuration as JSON (rates per annotator, persistence, matrix).
        ("noise_config", pa.string()),
        # where the round's model trained: "cpu" or "cuda:<GPU model>".
        ("device", pa.string()),
        # annotation time (simulated seconds, never slept; see direct_ray.annotation):
        # "sync" or "async"
        ("annotation_mode", pa.string()),
        # simulated wall time to buy this round's labels (0 with instant annotation)
        ("annotation_seconds", pa.float64()),
        # summed labelling time of all annotators this round
        ("annotator_busy_seconds", pa.float64()),
        # full annotation configuration as JSON (latency model, speeds, stragglers)
        ("annotation_config", pa.string()),
        # labels bought (counted in n_labeled) but not back when the round ended, so not in
        # its model: an asynchronous team that overlaps rounds is still on them (else 0)
        ("labels_in_flight", pa.int64()),
    ]
)

SELECTION_SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("round", pa.int32()),
        ("order", pa.int64()),  # position in the order bought within the trial
        ("pool_index", pa.int64()),
        ("true_label", pa.int64()),
        ("observed_label", pa.int64()),
        # --- additions ---
        ("annotator", pa.int32()),  # which simulated annotator answered (-1: initial batch oracle)
        ("dataset", pa.string()),
        ("strategy", pa.string()),
        # simulated seconds since the trial began when the label came back
        ("answered_at", pa.float64()),
    ]
)

SCHEMAS = {CURVES: CURVE_SCHEMA, SELECTIONS: SELECTION_SCHEMA}

# Named groups of curve columns, so that the row builder, the sweep's progress reports and
# the analysis refer to the columns by group instead of each keeping its own copy of names.
#: test-split metrics of a round (what :func:`direct_ray.metrics.classification_metrics` gives)
ACCURACY_COLUMNS = ("balanced_accuracy", "accuracy", "worst_class_accuracy", "minority_accuracy")
#: what the trial has bought by the end of a round
LABEL_COUNT_COLUMNS = ("n_labeled", "n_labeled_per_class", "n_noisy_labels", "n_minority_labels")
#: wall-clock seconds; the only columns that differ between two runs of the same trial
TIMING_COLUMNS = ("train_seconds", "score_seconds", "select_seconds", "round_seconds")
#: what makes a trial a point of the study (setting, method, seed); constant over its rounds
TRIAL_KEY_COLUMNS = ("dataset", "num_classes", "noise_model", "noise_rate", "strategy", "b_parallel", "seed")
#: the few values a sweep reports to Ray Tune after every round (its progress and result grid)
PROGRESS_COLUMNS = ("round", "n_labeled", "balanced_accuracy", "n_minority_labels")

# The columns that outside studies rely on; a reader refuses files that lack any of them.
REQUIRED_COLUMNS = {
    CURVES: [f.name for f in CURVE_SCHEMA][: CURVE_SCHEMA.get_field_index("select_seconds") + 1],
    SELECTIONS: ["trial_id", "round", "order", "pool_index", "true_label", "observed_label"],
}

PARTITION_KEYS = ("dataset", "strategy")


def file_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of one Parquet file: the table schema without the partition columns."""
    return pa.schema([f for f in schema if f.name not in PARTITION_KEYS])


FILE_SCHEMAS = {name: file_schema(schema) for name, schema in SCHEMAS.items()}
COLUMN_GROUPS = (ACCURACY_COLUMNS, LABEL_COUNT_COLUMNS, TIMING_COLUMNS, TRIAL_KEY_COLUMNS, PROGRESS_COLUMNS)
