"""One trial on real Ray: actors, tasks, checkpoints, injected faults, bad configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from direct_ray.config import ConfigError, TrialConfig
from direct_ray.data import DatasetSpec
from direct_ray.noise import NoiseConfig
from direct_ray.training import ModelConfig
from direct_ray.pool_state import PoolState
from direct_ray.runtime.team import ActorCache, trial_team
from direct_ray.trial import TrialContext, TrialState, run_trial

from tests.paths import ROOT
# Columns that depend on the computation only (not on wall-clock time).
DETERMINISTIC = [
    "round", "n_labeled", "n_labeled_per_class", "n_noisy_labels", "n_minority_labels",
    "balanced_accuracy", "accuracy", "worst_class_accuracy", "minority_accuracy", "per_class_accuracy",
]


def make_config(**changes) -> TrialConfig:
    base = dict(
        study="test",
        dataset=DatasetSpec(kind="digits", num_classes=2),
        strategy="direct",
        seed=3,
        b_parallel=2,
        noise=NoiseConfig(model="uniform", rate=0.2),
        rounds=3,
        b_train=10,
        initial_size=10,
        model=ModelConfig(kind="mlp"),
    )
    base.update(changes)
    return TrialConfig(**base)


def curve(state: TrialState) -> list[dict]:
    return [{k: row[k] for k in DETERMINISTIC} for row in state.curve]


def purchases(state: TrialState) -> list[dict]:
    """The audit rows without the trial id."""
    return [{k: v for k, v in row.items() if k != "trial_id"} for row in state.selections]


@pytest.fixture(scope="module")
def clean_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    state = run_trial(make_config(), context=TrialContext(output=out))
    return state, out


def test_a_trial_runs_end_to_end_and_writes_parquet(clean_run):
    state, out = clean_run
    cfg = make_config()
    assert [r["round"] for r in state.curve] == [0, 1, 2, 3]
    assert [r["n_labeled"] for r in state.curve] == [10, 20, 30, 40]
    bought = [s["pool_index"] for s in state.selections]
    assert len(bought) == cfg.total_budget == len(set(bought))
    assert [s["order"] for s in state.selections] == list(range(cfg.total_budget))
    assert all(0.0 <= r["balanced_accuracy"] <= 1.0 for r in state.curve)
    assert state.curve[-1]["n_noisy_labels"] == sum(s["true_label"] != s["observed_label"] for s in state.selections)
    assert {s["annotator"] for s in state.selections} == {0, 1}  # the batch is spread over both annotators
    curves = ds.dataset(out / "curves", partitioning="hive").to_table().to_pylist()
    assert [r["n_labeled"] for r in sorted(curves, key=lambda r: r["round"])] == [10, 20, 30, 40]
    assert curves[0]["dataset"] == "digits-k2" and curves[0]["strategy"] == "direct"
    assert {r["device"] for r in curves} == {"cpu"}  # where each round's model trained
    selections = ds.dataset(out / "selections", partitioning="hive").to_table()
    assert selections.num_rows == cfg.total_budget


def test_same_seed_same_curve(clean_run, ray_session):
    again = run_trial(make_config(), context=TrialContext())
    assert curve(again) == curve(clean_run[0])
    assert again.selections == clean_run[0].selections


def test_killed_trial_resumes_at_its_last_round_with_the_same_curve(clean_run, tmp_path, inject_faults):
    """A trial process killed mid-round (os._exit) is restarted from its checkpoint."""
    checkpoint = tmp_path / "ckpt"
    cfg = make_config()
    inject_faults(trial_exit_at_round=2)
    script = (
        "import json, sys\n"
        "from direct_ray.config import TrialConfig\n"
        "from direct_ray.trial import TrialContext, run_trial\n"
        "import ray\n"
        "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        f"run_trial(TrialConfig.from_dict(json.loads(sys.argv[1])), checkpoint_dir={str(checkpoint)!r},"
        " context=TrialContext())\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(cfg.to_dict())], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == 1, killed.stderr[-2000:]
    saved = TrialState.load(checkpoint)
    assert saved.next_round == 2 and [r["round"] for r in saved.curve] == [0, 1]
    # Rows of the rounds done (rebuilt from the pool, which also holds round 2's purchase).
    assert sorted({r["round"] for r in saved.selections}) == [0, 1]
    resumed = run_trial(cfg, checkpoint_dir=checkpoint, context=TrialContext())
    assert curve(resumed) == curve(clean_run[0])
    assert purchases(resumed) == purchases(clean_run[0])


def test_annotator_crash_is_retried_without_losing_or_repeating_labels(clean_run, inject_faults):
    markers = inject_faults(annotator_exit_on_query=7)
    cfg = make_config()
    state = run_trial(cfg, context=TrialContext())
    assert (markers / "annotator_exit_0.fired").exists(), "the fault did not fire"
    bought = [s["pool_index"] for s in state.selections]
    assert len(bought) == cfg.total_budget == len(set(bought))
    # Queries are keyed, not streamed, so the retried query got the same answer.
    assert curve(state) == curve(clean_run[0])
    assert purchases(state) == purchases(clean_run[0])


def test_galaxy_reports_that_it_ran_sequentially(ray_session):
    state = run_trial(make_config(strategy="galaxy", b_parallel=3, rounds=1), context=TrialContext())
    assert {r["effective_b_parallel"] for r in state.curve} == {1}
    assert {r["b_parallel"] for r in state.curve} == {3}


def test_embedding_strategy_gets_embeddings(ray_session):
    state = run_trial(make_config(strategy="badge", rounds=1, noise=NoiseConfig()), context=TrialContext())
    assert state.curve[-1]["n_labeled"] == 20


def test_strategy_options_reach_the_strategy_and_the_label_names_the_results(ray_session, tmp_path):
    plain = run_trial(make_config(strategy="badge", rounds=1, noise=NoiseConfig()), context=TrialContext())
    small = make_config(strategy={"name": "badge", "label": "badge-small", "max_candidates": 12}, rounds=1, noise=NoiseConfig())
    state = run_trial(small, context=TrialContext(output=tmp_path))
    assert {row["strategy"] for row in state.curve} == {"badge-small"}
    assert [p.name for p in (tmp_path / "curves" / "dataset=digits-k2").iterdir()] == ["strategy=badge-small"]
    # 12 candidates (of ~1,250) are drawn at random: the purchase differs from plain BADGE's.
    assert purchases(state) != purchases(plain)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: make_config(strategy="nope"), "unknown"),
        (lambda: make_config(b_parallel=0), "b_parallel"),
        (lambda: make_config(noise=NoiseConfig.from_dict({"model": "uniform", "rate": 1.0})), "rate"),
        (lambda: make_config(rounds=1000), "budget"),
        (lambda: make_config(dataset=DatasetSpec(kind="digits", num_classes=11)), "num_classes"),
    ],
)
def test_invalid_configuration_fails_before_any_actor(monkeypatch, build, message):
    import direct_ray.trial as trial_module

    def no_actors(*args, **kwargs):
        raise AssertionError("an actor was started for an invalid configuration")

    monkeypatch.setattr(trial_module, "trial_team", no_actors)
    with pytest.raises((ConfigError, ValueError), match=message):
        run_trial(build(), context=TrialContext())


def test_resume_refuses_a_checkpoint_of_another_trial(clean_run, tmp_path):
    state = TrialState(trial_id="someone-else", pool=clean_run[0].pool)
    state.save(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="belongs to trial"):
        run_trial(make_config(), checkpoint_dir=tmp_path / "ckpt", context=TrialContext())


def test_checkpoint_round_trip(clean_run, tmp_path):
    state = clean_run[0]
    state.save(tmp_path / "c")
    state.save(tmp_path / "c")  # replacing an existing checkpoint is atomic and allowed
    again = TrialState.load(tmp_path / "c")
    assert again.curve == state.curve and again.selections == state.selections
    np.testing.assert_array_equal(again.pool.observed, state.pool.observed)
    # The selection rows are the pool's record: a checkpoint does not store them twice.
    assert set(json.loads((tmp_path / "c" / "rows.json").read_text())) == {"curve"}


def test_checkpoint_of_the_previous_format_loads(clean_run, tmp_path):
    """Format 2 also stored the selection rows; they are rebuilt from its pool like format 3's."""
    state = clean_run[0]
    state.save(tmp_path / "c")
    meta = json.loads((tmp_path / "c" / "state.json").read_text())
    (tmp_path / "c" / "state.json").write_text(json.dumps({**meta, "format": 2}))
    (tmp_path / "c" / "rows.json").write_text(json.dumps({"curve": state.curve, "selections": state.selections}))
    assert TrialState.load(tmp_path / "c").selections == state.selections
    (tmp_path / "c" / "state.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(ValueError, match="format 1"):
        TrialState.load(tmp_path / "c")


def test_strategy_state_survives_a_restart(ray_session, tmp_path, inject_faults):
    """Cluster-Margin clusters once per trial; a resumed trial must reuse those clusters."""
    cfg = make_config(strategy="cluster_margin", noise=NoiseConfig(), rounds=3)
    clean = run_trial(cfg, context=TrialContext())
    inject_faults(trial_raise_at_round=2)
    with pytest.raises(RuntimeError, match="injected fault"):
        run_trial(cfg, checkpoint_dir=tmp_path / "ckpt", context=TrialContext())
    assert "clusters" in TrialState.load(tmp_path / "ckpt").strategy_state
    resumed = run_trial(cfg, checkpoint_dir=tmp_path / "ckpt", context=TrialContext())
    assert curve(resumed) == curve(clean)
    assert purchases(resumed) == purchases(clean)


def test_actors_end_with_the_trial_unless_the_caller_keeps_them(clean_run):
    import ray

    def alive(actors) -> bool:
        try:
            ray.get([a.__ray_ready__.remote() for a in actors], timeout=30)
            return True
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return False

    def ended(actors) -> bool:
        """Every actor is dead within 30 s (ray.kill is asynchronous)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not any(alive([a]) for a in actors):
                return True
            time.sleep(0.2)
        return False

    cache = ActorCache()
    run_trial(make_config(rounds=1), context=TrialContext(), actor_cache=cache)
    kept = cache.take()
    assert alive(kept.all()) and len(kept.annotators) == 2
    cache.keep(kept)
    state = run_trial(make_config(rounds=1, b_parallel=3), context=TrialContext(), actor_cache=cache)
    again = cache.take()
    assert again.selector is kept.selector and len(again.annotators) == 3  # grown, not replaced
    assert {s["annotator"] for s in state.selections} == {0, 1, 2}
    again.kill()
    assert ended(again.all())
    # Without a cache nothing is left running, and after a failure nothing is kept.
    truth, pool = ray.put(np.zeros(50, dtype=np.int64)), PoolState.empty(50, 2)
    with trial_team(make_config(), 2, truth, pool, {}) as team:
        actors = [team.selector, team.pool, *team.annotators]
        assert alive(actors)
    assert ended(actors)
    with pytest.raises(KeyError), trial_team(make_config(), 2, truth, pool, {}, cache=cache) as team:
        actors = [team.selector, team.pool, *team.annotators]
        raise KeyError("a failed trial")
    assert ended(actors) and cache.take().all() == []


def test_a_trial_on_a_sweeps_team_starts_no_annotators_of_its_own(ray_session, monkeypatch):
    import direct_ray.runtime.team as team_module
    from direct_ray.runtime.annotators import start_shared_team

    members = start_shared_team("test/no-own-annotators", 2)

    def refuse(*args, **kwargs):
        raise AssertionError("the trial started an annotator of its own")

    monkeypatch.setattr(team_module.AnnotatorActor, "remote", refuse)
    truth = ray_session.put(np.zeros(50, dtype=np.int64))
    with trial_team(make_config(), 2, truth, PoolState.empty(50, 2), {}, annotator_team="test/no-own-annotators") as team:
        assert len(team.annotators) == 2
    for member in members:
        ray_session.kill(member)


def test_a_file_whose_common_class_is_0_counts_its_rare_class_as_minority(ray_session, tmp_path):
    """make_classification(weights=[0.9, 0.1]) makes class 0 common: it becomes the majority, class 1."""
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=400, n_features=8, weights=[0.9, 0.1], flip_y=0, random_state=0)
    np.savez(tmp_path / "skl.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    config = make_config(dataset=DatasetSpec(kind="features", path=str(tmp_path / "skl.npz")), strategy="random",
                         noise=NoiseConfig(), rounds=2)
    assert config.dataset.num_classes == 2
    state = run_trial(config, context=TrialContext(output=tmp_path / "out"))
    bought = [s["pool_index"] for s in state.selections]
    assert state.curve[-1]["n_minority_labels"] == np.count_nonzero(y[:300][bought] == 1)
    assert [s["true_label"] for s in state.selections] == (1 - y[:300][bought]).tolist()
    [path] = (tmp_path / "out" / "curves").rglob("*.parquet")
    assert path.parent.parent.name == "dataset=features-skl-k2"
    assert json.loads(pq.read_metadata(path).metadata[b"direct_ray.classes"]) == [1, 0]
