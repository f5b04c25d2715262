"""The loop: outputs, exact resume, non-finite stop, interruption safety."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.data import pipeline
from medgen_jax.errors import CheckpointError, ConfigError, NonFiniteLossError
from medgen_jax.train import steps
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.loop import load_run, train_and_evaluate


def _params(state):
  """Every array of the state (params, optimizer moments, stats, EMA, steps)."""
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_workdir_outputs(tiny_config, tmp_path):
  config = tiny_config()
  config.train.keep_checkpoints = 1
  out = train_and_evaluate(config, tmp_path / "run")
  run = tmp_path / "run"
  assert out["step"] == 6
  saved = json.loads((run / "config.json").read_text())
  assert saved["model"]["channels"] == 1 and saved["model"]["d_norm"] == "batch"
  records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [2, 3, 4, 6]
  assert all(np.isfinite(r["d_loss"]) for r in records if "d_loss" in r)
  assert "eval/d_logit_val" in records[-1]
  assert sorted(p.name for p in (run / "samples").iterdir()) == [
      "step_0000003.png", "step_0000006.png"]
  assert Checkpointer(run / "checkpoints").all_steps() == [6]  # keep 1
  # The saved run alone rebuilds the model and restores the final state.
  task, state, cfg = load_run(run)
  chex.assert_trees_all_equal(_params(state), _params(out["state"]))


def test_resumed_run_equals_uninterrupted(tiny_config, tmp_path):
  full = train_and_evaluate(tiny_config(), tmp_path / "full")["state"]

  first = tiny_config()
  first.train.steps = 3
  train_and_evaluate(first, tmp_path / "split")
  resumed = train_and_evaluate(tiny_config(), tmp_path / "split",
                               resume=True)["state"]
  assert int(resumed.step) == 6
  chex.assert_trees_all_equal(_params(resumed), _params(full))
  records = [json.loads(l) for l in
             (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [2, 3, 4, 6]


def test_interrupt_keeps_last_checkpoint_and_resume_is_exact(
    tiny_config, tmp_path, monkeypatch):
  full = train_and_evaluate(tiny_config(), tmp_path / "full")["state"]

  original = pipeline.BatchSampler.batch

  def interrupted(self, index):
    if index == 4:
      raise KeyboardInterrupt
    return original(self, index)

  monkeypatch.setattr(pipeline.BatchSampler, "batch", interrupted)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(tiny_config(), tmp_path / "run")
  monkeypatch.setattr(pipeline.BatchSampler, "batch", original)
  ckpt_dir = tmp_path / "run" / "checkpoints"
  assert Checkpointer(ckpt_dir).all_steps() == [3]
  # A save cut off mid-write leaves only a temporary folder, never a
  # checkpoint that looks complete.
  (ckpt_dir / "6.orbax-checkpoint-tmp-1234").mkdir()
  (ckpt_dir / "6.orbax-checkpoint-tmp-1234" / "junk").write_text("partial")
  resumed = train_and_evaluate(tiny_config(), tmp_path / "run",
                               resume=True)["state"]
  chex.assert_trees_all_equal(_params(resumed), _params(full))


def test_non_finite_loss_stops_at_the_step(tiny_config, tmp_path, monkeypatch):
  make = steps.make_gan_train_step

  def poisoned(cfg):
    step = make(cfg)

    def wrapped(state, batch, key):
      new, metrics = step(state, batch, key)
      metrics = dict(metrics)
      metrics["d_loss"] = jnp.where(new.step >= 5, jnp.nan, metrics["d_loss"])
      return new, metrics

    return wrapped

  monkeypatch.setattr(steps, "make_gan_train_step", poisoned)
  config = tiny_config()
  config.train.steps = 10
  config.train.checkpoint_every = 2
  config.train.log_every = 1
  with pytest.raises(NonFiniteLossError, match="d_loss at step 5") as err:
    train_and_evaluate(config, tmp_path / "run")
  assert err.value.step == 5
  assert "last good checkpoint is step 4" in str(err.value)
  assert Checkpointer(tmp_path / "run" / "checkpoints").latest_step() == 4
  records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  assert max(json.loads(l)["step"] for l in records) == 4


def test_existing_run_is_not_overwritten(tiny_config, tmp_path):
  config = tiny_config()
  config.train.steps = 3
  train_and_evaluate(config, tmp_path / "run")
  with pytest.raises(CheckpointError, match="already holds a run"):
    train_and_evaluate(tiny_config(), tmp_path / "run")


def test_resume_rejects_changed_settings(tiny_config, tmp_path):
  config = tiny_config()
  config.train.steps = 3
  train_and_evaluate(config, tmp_path / "run")
  changed = tiny_config(loss="hinge")
  with pytest.raises(ConfigError, match="loss: 'nonsaturating' -> 'hinge'"):
    train_and_evaluate(changed, tmp_path / "run", resume=True)
  with pytest.raises(CheckpointError, match="no run to continue"):
    train_and_evaluate(tiny_config(), tmp_path / "empty", resume=True)
