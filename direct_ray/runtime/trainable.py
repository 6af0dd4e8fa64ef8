"""The Ray Tune side of a sweep: the trainable that runs one trial, and the callback that reports progress.

Each trial runs :func:`direct_ray.trial.run_trial` inside :func:`tune_trial`, a function
trainable that reserves ``resources.cpus_per_trial`` / ``gpus_per_trial`` in a placement
group (set up by :func:`direct_ray.sweep.run_sweep`): the trial driver itself takes no
resources, the training task runs in the reserved bundle, and the pool, selection and
annotator actors take zero CPUs. Every round is checkpointed through ``tune.report(...,
checkpoint=...)``, so a retried trial resumes at its last round.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from direct_ray.config import TrialConfig
from direct_ray.progress import SweepProgress
from direct_ray.results import layout
from direct_ray.results.schema import PROGRESS_COLUMNS
from direct_ray.runtime.team import ActorCache, team_for_trial

log = logging.getLogger("direct_ray.sweep")

# A Tune trainable process runs trial after trial (reuse_actors=True): it keeps its trial's
# actors for the next one (see direct_ray.runtime.team). They end with the process.
_TRAINABLE_ACTORS = ActorCache()


def tune_trial(param: dict[str, Any], datasets: dict | None = None) -> None:
    """The Tune trainable: one trial, resumed from Tune's checkpoint when there is one.

    ``datasets`` maps dataset names to :class:`~direct_ray.runtime.inputs.DatasetRefs` that
    the driver put in the object store once for the whole sweep (``tune.with_parameters``).
    """
    from ray import tune

    from direct_ray.checkpoint import TrialState
    from direct_ray.runtime.priority import yield_to_training
    from direct_ray.trial import TrialContext, run_trial

    # This process only coordinates (its work waits on, or overlaps with, the trial's
    # training task): it must not take a core from training (see runtime.priority).
    yield_to_training()
    config = TrialConfig.from_dict(param["trial"])
    ctx = param["context"]
    if layout.trial_complete(ctx["output"], config):
        # Finished before (an interrupted or grown sweep): never rerun it. One report of its
        # last round gives Tune a result for it, as for every other trial.
        last = layout.last_curve_row(ctx["output"], config)
        tune.report({**{c: last[c] for c in PROGRESS_COLUMNS}, "rounds_total": config.rounds})
        return
    context = TrialContext(
        sweep_id=ctx["sweep_id"],
        output=ctx["output"],
        study=ctx["study"],
        versions=ctx["versions"],
        annotator_team=team_for_trial(config.trial_id, ctx["annotator_teams"]),
    )
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = TrialState.load(directory)
    else:
        resume = _earlier_state(ctx["output"], config.trial_id)

    def report(state: TrialState, row: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = state.save(Path(tmp) / "state")
            metrics = {column: row[column] for column in PROGRESS_COLUMNS}
            metrics["rounds_total"] = config.rounds
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(path)))

    run_trial(config, context=context, resume=resume, on_round=report, actor_cache=_TRAINABLE_ACTORS,
              dataset=(datasets or {}).get(config.dataset.name))


def progress_callback(progress: SweepProgress):
    from ray import tune

    class Progress(tune.Callback):
        """Feeds Tune's trial events to the progress line; logs each round at DEBUG (``--verbose``, sweep.log)."""

        def on_trial_start(self, iteration, trials, trial, **info):
            progress.started(trial_id_of(trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            config = TrialConfig.from_dict(trial.config["trial"])
            log.debug("  %14s %s: round %s/%s n_labeled=%s balanced_accuracy=%.3f", str(config.strategy),
                      config.trial_id, result["round"], result["rounds_total"], result["n_labeled"],
                      result["balanced_accuracy"])
            progress.round_done(config.trial_id)

        def on_trial_complete(self, iteration, trials, trial, **info):
            log.debug("trial done: %s", trial_id_of(trial))
            progress.finished(trial_id_of(trial))

        def on_trial_recover(self, iteration, trials, trial, **info):
            log.warning("[trial failed] %s: Tune retries it from its last round", trial_id_of(trial))

        def on_trial_error(self, iteration, trials, trial, **info):
            log.warning("[trial failed] %s: no retries left", trial_id_of(trial))
            progress.finished(trial_id_of(trial), failed=True)

    return Progress()


def trial_id_of(trial) -> str:
    """The trial id of a Tune trial (from the trial config it carries)."""
    return TrialConfig.from_dict(trial.config["trial"]).trial_id


def _earlier_state(output: str, trial_id: str):
    """The trial's latest state in an earlier Tune experiment of this sweep (a grown sweep), or None."""
    import pyarrow.fs as pafs

    from direct_ray.checkpoint import TrialState

    for fs, path in layout.earlier_checkpoints(output, trial_id):
        with tempfile.TemporaryDirectory() as tmp:
            pafs.copy_files(path, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
            if TrialState.exists_in(tmp):
                return TrialState.load(tmp)
    return None
