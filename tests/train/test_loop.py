"""The loop: outputs, exact resume, non-finite stop, interruption safety,
refusals that leave the workdir untouched."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.errors import CheckpointError, ConfigError, NonFiniteLossError
from medgen_jax.families.gan import GanTask
from medgen_jax.families.gan import step as gan_step
from medgen_jax.train import loop
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.loop import load_run, train_and_evaluate


def _leaves(state):
  """Every array of the state (params, optimizer moments, stats, EMA, steps)."""
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def _snapshot(folder):
  """{relative path: bytes} of every file under folder."""
  return {str(p.relative_to(folder)): p.read_bytes()
          for p in sorted(folder.rglob("*")) if p.is_file()}


def test_workdir_outputs(tiny_gan_run):
  run, out = tiny_gan_run["workdir"], tiny_gan_run["out"]
  assert out["step"] == 6
  saved = json.loads((run / "config.json").read_text())
  # Data-derived fields are resolved; declared choices stay as written.
  assert saved["gan"]["channels"] == 1 and saved["gan"]["num_classes"] == 0
  assert saved["gan"]["d_norm"] == "auto"
  records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [2, 3, 4, 6]
  assert all(np.isfinite(r["d_loss"]) for r in records if "d_loss" in r)
  assert "eval/d_logit_val" in records[-1]
  assert sorted(p.name for p in (run / "samples").iterdir()) == [
      "step_0000003.png", "step_0000006.png"]
  assert Checkpointer(run / "checkpoints", create=False).all_steps() == [3, 6]
  # The saved run alone rebuilds the model and restores the final state.
  restored = load_run(run)
  assert restored.step == 6 and restored.metadata["family"] == "gan"
  chex.assert_trees_all_equal(_leaves(restored.state), _leaves(out["state"]))


def test_resumed_run_equals_uninterrupted(tiny_config, tiny_gan_run, tmp_path):
  full = tiny_gan_run["out"]["state"]
  train_and_evaluate(tiny_config(**{"train.steps": 3}), tmp_path / "split")
  resumed = train_and_evaluate(tiny_config(), tmp_path / "split",
                               resume=True)["state"]
  assert int(resumed.step) == 6
  chex.assert_trees_all_equal(_leaves(resumed), _leaves(full))
  records = [json.loads(l) for l in
             (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [2, 3, 4, 6]


def test_scheduled_run_resumes_exactly(tiny_config, tiny_gan_run, tmp_path):
  # The schedule's count is part of the checkpoint: a run with a learning-
  # rate decay, stopped at step 3 and resumed, equals the uninterrupted one
  # (decay_end is fixed, so both decay over the same steps), and the decay
  # changes the result (the constant-rate run differs).
  sched = {"optimizer.schedule": "linear", "optimizer.decay_begin": 3,
           "optimizer.decay_end": 6}
  full = train_and_evaluate(tiny_config(**sched), tmp_path / "full")["state"]
  split = train_and_evaluate(tiny_config(**sched, **{"train.steps": 3}),
                             tmp_path / "split")["state"]
  # Before decay_begin the jitted step is the constant run's, bit for bit.
  at3 = load_run(tiny_gan_run["workdir"], 3).state
  for part in ("gen", "disc"):
    chex.assert_trees_all_equal(_leaves(getattr(split, part).params),
                                _leaves(getattr(at3, part).params))
  resumed = train_and_evaluate(tiny_config(**sched), tmp_path / "split",
                               resume=True)["state"]
  chex.assert_trees_all_equal(_leaves(resumed), _leaves(full))
  constant = tiny_gan_run["out"]["state"]
  assert not np.allclose(np.asarray(jax.tree.leaves(full.gen.params)[0]),
                         np.asarray(jax.tree.leaves(constant.gen.params)[0]))


def test_interrupt_keeps_last_checkpoint_and_resume_is_exact(
    tiny_config, tiny_gan_run, tmp_path, monkeypatch):
  full = tiny_gan_run["out"]["state"]
  original = GanTask.make_batch

  def interrupted(self, split, sampler, step):
    if step == 4:
      raise KeyboardInterrupt
    return original(self, split, sampler, step)

  monkeypatch.setattr(GanTask, "make_batch", interrupted)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(tiny_config(), tmp_path / "run")
  monkeypatch.setattr(GanTask, "make_batch", original)
  ckpt_dir = tmp_path / "run" / "checkpoints"
  assert Checkpointer(ckpt_dir, create=False).all_steps() == [3]
  # A save cut off mid-write leaves only a temporary folder, never a
  # checkpoint that looks complete.
  (ckpt_dir / "6.orbax-checkpoint-tmp-1234").mkdir()
  (ckpt_dir / "6.orbax-checkpoint-tmp-1234" / "junk").write_text("partial")
  resumed = train_and_evaluate(tiny_config(), tmp_path / "run",
                               resume=True)["state"]
  chex.assert_trees_all_equal(_leaves(resumed), _leaves(full))


def test_non_finite_loss_stops_at_the_step(tiny_config, tmp_path, monkeypatch):
  make = gan_step.make_gan_train_step

  def poisoned(cfg, gradient_fn):
    step = make(cfg, gradient_fn)

    def wrapped(state, batch, key):
      new, metrics = step(state, batch, key)
      metrics = dict(metrics)
      metrics["d_loss"] = jnp.where(new.step >= 5, jnp.nan, metrics["d_loss"])
      return new, metrics

    return wrapped

  monkeypatch.setattr(gan_step, "make_gan_train_step", poisoned)
  config = tiny_config(**{"train.steps": 10, "train.checkpoint_every": 2,
                          "train.log_every": 1})
  with pytest.raises(NonFiniteLossError, match="d_loss at step 5") as err:
    train_and_evaluate(config, tmp_path / "run")
  assert err.value.step == 5
  assert "last good checkpoint is step 4" in str(err.value)
  assert Checkpointer(tmp_path / "run" / "checkpoints").latest_step() == 4
  records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  assert max(json.loads(l)["step"] for l in records) == 4


def test_refusals_change_nothing_on_disk(tiny_config, tiny_gan_run, tmp_path):
  run = tmp_path / "run"
  train_and_evaluate(tiny_config(**{"train.steps": 3}), run)
  before = _snapshot(run)
  with pytest.raises(CheckpointError, match="already holds a run"):
    train_and_evaluate(tiny_config(), run)
  with pytest.raises(ConfigError, match="gan.loss: 'nonsaturating' -> 'hinge'"):
    train_and_evaluate(tiny_config(loss="hinge"), run, resume=True)
  assert _snapshot(run) == before  # config.json was not rewritten
  with pytest.raises(CheckpointError, match="no run to continue"):
    train_and_evaluate(tiny_config(), tmp_path / "empty", resume=True)
  assert not (tmp_path / "empty").exists()

  # Checkpoints deleted: --resume refuses instead of silently restarting.
  import shutil
  shutil.rmtree(run / "checkpoints")
  before = _snapshot(run)
  with pytest.raises(CheckpointError, match="no checkpoint to continue"):
    train_and_evaluate(tiny_config(), run, resume=True)
  assert _snapshot(run) == before  # metrics.jsonl kept


@pytest.mark.parametrize("case", ["file", "under_file", "long_name",
                                  "checkpoints_file"])
def test_bad_workdirs(tiny_config, tmp_path, case):
  a_file = tmp_path / "a_file"
  a_file.write_text("not a folder")
  workdir = {"file": a_file, "under_file": a_file / "run",
             "long_name": tmp_path / ("x" * 300),
             "checkpoints_file": tmp_path / "w"}[case]
  if case == "checkpoints_file":
    workdir.mkdir()
    (workdir / "checkpoints").write_text("a file named checkpoints")
  before = _snapshot(tmp_path)
  with pytest.raises(CheckpointError, match="--workdir|checkpoints"):
    train_and_evaluate(tiny_config(), workdir)
  assert _snapshot(tmp_path) == before


def test_steps_per_sec_counts_training_only(tiny_config, tmp_path, monkeypatch):
  """A fake clock advances 1 s per training step and 100 s per evaluation
  and per checkpoint save: the logged rate must be 1 step/s throughout."""
  clock = [0.0]
  monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])

  def tick(seconds, fn):
    def wrapped(*args, **kwargs):
      clock[0] += seconds
      return fn(*args, **kwargs)
    return wrapped

  monkeypatch.setattr(GanTask, "make_batch", tick(1.0, GanTask.make_batch))
  monkeypatch.setattr(GanTask, "evaluate", tick(100.0, GanTask.evaluate))
  monkeypatch.setattr(Checkpointer, "save", tick(100.0, Checkpointer.save))
  train_and_evaluate(tiny_config(), tmp_path / "run")
  rates = [r["steps_per_sec"] for r in
           map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()) if "steps_per_sec" in r]
  assert len(rates) == 3 and rates == pytest.approx([1.0] * 3)


def test_run_trained_on_8_devices_samples_on_1(tiny_config, tmp_path):
  if jax.device_count() < 8:
    pytest.skip("needs 8 fake devices (tests/conftest.py sets XLA_FLAGS)")
  config = tiny_config(**{"train.num_devices": 8, "train.steps": 3})
  out = train_and_evaluate(config, tmp_path / "run")
  run = load_run(tmp_path / "run")  # onto one device
  leaf = jax.tree.leaves(run.state)[0]
  assert len(leaf.sharding.device_set) == 1
  chex.assert_trees_all_equal(_leaves(run.state), _leaves(out["state"]))
  two = load_run(tmp_path / "run", devices=jax.devices()[:2])
  assert len(jax.tree.leaves(two.state)[0].sharding.device_set) == 2
