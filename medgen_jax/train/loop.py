"""`train_and_evaluate(config, workdir)`: the training loop of every family.

The loop knows a family only through the task protocol (train/task.py). It
does every file write of a run, in one place (and, on several hosts, only on
process 0):

  config.json         the full, resolved config; alone it rebuilds the task
                      and round-trips through `medgen train --config`
  metrics.jsonl       one JSON object per logged step (+ the task's scalars)
  <name>/step_*.png   the task's pictures (GAN: samples/step_*.png)
  <name>/step_*.npz   the task's arrays
  checkpoints/<step>  orbax checkpoints (state + JSON metadata), the last
                      `train.keep_checkpoints`

Guarantees:
  * the same config and seed give the same run, and a run resumed from
    checkpoint k reaches exactly the state of an uninterrupted run (batches,
    RNG and state are all functions of the step count);
  * everything a run could refuse (config, workdir, data, devices, resume
    compatibility, the checkpoint to resume) is checked before anything is
    written, so a refused command changes nothing on disk;
  * a non-finite loss stops the run with `NonFiniteLossError` naming the
    first bad step, before any checkpoint of a poisoned state is written;
  * an existing run is never overwritten: continue it with `resume=True`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from medgen_jax.configs.base import validate_base
from medgen_jax.configs.overrides import apply_overrides, flatten
from medgen_jax.data.base import Dataset
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import (CheckpointError, ConfigError, DataError,
                               NonFiniteLossError)
from medgen_jax.outputs import MetricsLog, save_image_grid, save_npz, write_json
from medgen_jax.train import parallel
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.optimizers import OPTIMIZERS
from medgen_jax.train.task import Outputs, get_task

log = logging.getLogger("medgen_jax")

LOSS_KEYS_PREFIX = ("d_loss", "g_loss", "loss")
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Config fields any resumed run may change: they do not affect the math
# (the data may have moved; the device count changes only the partitioning).
RESUMABLE_FIELDS = ("train.steps", "train.progress", "train.log_every",
                    "train.eval_every", "train.checkpoint_every",
                    "train.keep_checkpoints", "train.num_samples",
                    "train.num_devices", "data.data_dir", "data.download")


def validate_config(config: ml_collections.ConfigDict):
  """Checks a whole config by meaning; returns the family's task class."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"expected an ml_collections.ConfigDict config, got "
                      f"{type(config).__name__}")
  task_cls = get_task(config.get("family", ""))
  validate_base(config)
  OPTIMIZERS.get(config.optimizer.name)
  task_cls.validate_config(config)
  return task_cls


def check_resume_compatible(saved: dict, new: dict, allowed,
                            path: pathlib.Path) -> None:
  """Raises ConfigError if `new` changes a field that affects the math."""
  a, b = flatten(saved), flatten(new)
  changed = sorted(k for k in set(a) | set(b)
                   if a.get(k) != b.get(k) and k not in allowed)
  if changed:
    detail = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:5])
    raise ConfigError(
        f"--resume with settings that differ from {path} ({detail}); resume "
        "with the run's settings (only --steps, logging, checkpointing, "
        "devices and --data-dir may change) or start a new --workdir")


NAME_MAX = 255    # bytes per path component on common file systems
PATH_MAX = 4096


def check_workdir(workdir: pathlib.Path, *, resume: bool) -> None:
  """Checks, without writing, that `workdir` can hold (or holds) a run."""
  where = f"--workdir {workdir}"
  for part in workdir.parts:
    if len(os.fsencode(part)) > NAME_MAX:
      raise CheckpointError(f"{where}: the name {part[:40]!r}... is longer "
                            f"than {NAME_MAX} bytes; choose a shorter "
                            "--workdir")
  if len(os.fsencode(str(workdir.absolute()))) > PATH_MAX - 200:
    raise CheckpointError(f"{where}: the path is too long for the files a "
                          "run writes under it; choose a shorter --workdir")
  ancestor = workdir
  while not ancestor.exists() and ancestor != ancestor.parent:
    ancestor = ancestor.parent
  if not workdir.exists():
    if not ancestor.is_dir():
      raise CheckpointError(f"{where}: {ancestor} is a file, not a folder; "
                            "choose a --workdir outside it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
      raise CheckpointError(f"{where}: cannot create it, {ancestor} is not "
                            "writable; choose another --workdir")
  elif not workdir.is_dir():
    raise CheckpointError(f"{where} is a file, not a folder; choose another "
                          "--workdir")
  elif not os.access(workdir, os.W_OK | os.X_OK):
    raise CheckpointError(f"{where} is not writable; choose another --workdir")
  ckpt = workdir / CHECKPOINT_DIR
  if ckpt.exists() and not ckpt.is_dir():
    raise CheckpointError(f"{ckpt} is a file, but a run keeps its checkpoints "
                          "in that folder; move the file or choose another "
                          "--workdir")
  config_path = workdir / CONFIG_FILE
  if resume:
    if not config_path.is_file():
      raise CheckpointError(
          f"--resume: {config_path} not found; there is no run to continue "
          "in this --workdir")
  elif config_path.exists() or (ckpt.is_dir() and any(ckpt.iterdir())):
    raise CheckpointError(
        f"{workdir} already holds a run; pass --resume to continue it or "
        "choose another --workdir")


def read_run_config(workdir) -> ml_collections.ConfigDict:
  """A run's config.json, checked against its family's current config.

  Raises:
    CheckpointError: the file is missing, not JSON, or not a config of a
      known family.
  """
  path = pathlib.Path(workdir) / CONFIG_FILE
  if not path.is_file():
    raise CheckpointError(
        f"{path} not found; --workdir must be a folder written by "
        "`medgen train`")
  try:
    data = json.loads(path.read_bytes().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    raise CheckpointError(f"{path} is not valid UTF-8 JSON ({e}); the run's "
                          "config is damaged") from None
  except OSError as e:
    raise CheckpointError(f"cannot read {path} ({e.strerror})") from None
  if not isinstance(data, dict) or not isinstance(data.get("family"), str):
    raise CheckpointError(f"{path} is not a run config (expected a JSON "
                          "object with a 'family' field)")
  task_cls = get_task(data["family"])
  config = task_cls.get_config()
  try:
    apply_overrides(config, task_cls.upgrade_config(flatten(data)), str(path))
  except ConfigError as e:
    raise CheckpointError(f"{e}; the run's config.json does not fit the "
                          f"{data['family']!r} family of this version") from None
  return config


def _check_data_keys(task_cls, dataset: Dataset) -> None:
  missing = [k for k in task_cls.data_keys if k not in dataset.keys]
  if missing:
    raise DataError(
        f"{dataset.source}: dataset {dataset.name!r} has arrays "
        f"{list(dataset.keys)}, but family {task_cls.name!r} needs "
        f"{list(task_cls.data_keys)} (missing {missing}); choose a dataset "
        "made for this family")


def _abstract_state(task, key, sharding):
  shapes = jax.eval_shape(task.init_state, key)
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      shapes)


def _step_of(state) -> int:
  if not hasattr(state, "step"):
    raise TypeError(f"a task's state must have a `step` (the number of "
                    f"completed steps); got {type(state).__name__}")
  return int(state.step)


def _is_writer() -> bool:
  return jax.process_index() == 0


def _mkdir(path: pathlib.Path) -> None:
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise CheckpointError(f"cannot create {path} ({e.strerror})") from None


def write_outputs(workdir: pathlib.Path, step: int, outputs: Outputs) -> None:
  """Writes a task's pictures and arrays under `workdir` (process 0 only)."""
  if not _is_writer():
    return
  for name, images in outputs.images.items():
    save_image_grid(workdir / name / f"step_{step:07d}.png", images)
  for name, array in outputs.arrays.items():
    save_npz(workdir / name / f"step_{step:07d}.npz", {name: array})


def train_and_evaluate(config: ml_collections.ConfigDict, workdir,
                       *, resume: bool = False) -> dict[str, Any]:
  """Trains the family named by `config.family`; see the module docstring.

  Args:
    config: a family's config (e.g. `get_config("gan")`); its data-derived
      fields are set in place.
    workdir: output folder.
    resume: continue the run in `workdir` from its latest readable
      checkpoint; `config` may differ from the run's only in
      RESUMABLE_FIELDS (and the family's `resumable_fields`).

  Returns:
    Summary: final step, last logged metrics, workdir, final state.
  """
  workdir = pathlib.Path(workdir)
  task_cls = validate_config(config)
  check_workdir(workdir, resume=resume)
  config_path = workdir / CONFIG_FILE
  ckpt_dir = workdir / CHECKPOINT_DIR
  saved = read_run_config(workdir).to_dict() if resume else None

  dataset = load_dataset(config.data)
  _check_data_keys(task_cls, dataset)
  task = task_cls(config, dataset)  # checks the data; sets derived fields
  if saved is not None:
    check_resume_compatible(saved, config.to_dict(),
                            RESUMABLE_FIELDS + tuple(task.resumable_fields),
                            config_path)

  tc = config.train
  mesh = parallel.make_mesh(tc.num_devices)
  train_split = dataset.split("train")
  sampler = IndexSampler(len(train_split), tc.batch_size, seed=config.data.seed)
  first = task.make_batch(train_split, sampler, 0)
  axes = dict(task.batch_axes(first))
  parallel.check_batch(first, axes, mesh)
  shardings = parallel.batch_shardings(mesh, axes)

  init_key, step_key = jax.random.split(jax.random.key(config.seed))
  rep = parallel.replicated(mesh)
  if resume:
    steps = []
    if ckpt_dir.is_dir():
      with Checkpointer(ckpt_dir, create=False) as reader:
        steps = reader.all_steps()
    if not steps:
      raise CheckpointError(
          f"--resume: {ckpt_dir} holds no checkpoint (the run stopped before "
          "its first save, or they were deleted), so there is no checkpoint "
          "to continue from; start a new --workdir (or delete this one)")
  else:
    _mkdir(workdir)
  ckpt = Checkpointer(ckpt_dir, keep=tc.keep_checkpoints)
  try:
    if resume:
      restored = ckpt.restore_latest(_abstract_state(task, init_key, rep))
      state = restored.state
      log.info("resumed from step %d of %s", restored.step, ckpt_dir)
    else:
      state = jax.jit(task.init_state, out_shardings=rep)(init_key)
    start = _step_of(state)
    if _is_writer() and (saved is None or saved != config.to_dict()):
      write_json(config_path, config.to_dict())
    metrics_log = MetricsLog(workdir / "metrics.jsonl")
    if _is_writer():
      metrics_log.truncate_after(start)
    step_fn = parallel.jit_sharded_step(task.train_step, mesh, shardings)
    return _run(task, state, step_fn, step_key, dataset, sampler, shardings,
                start, config, workdir, ckpt, metrics_log)
  finally:
    ckpt.close()


def _run(task, state, step_fn, step_key, dataset, sampler, shardings, start,
         config, workdir, ckpt, metrics_log):
  tc = config.train
  total = tc.steps
  train_split = dataset.split("train")
  pending: list[tuple[int, dict]] = []
  last: dict[str, Any] = {}
  t_mark, s_mark = time.perf_counter(), start
  writer = _is_writer()

  def flush(step: int) -> list[dict[str, Any]]:
    """Fetches pending metrics, checks them, keeps every log_every-th step."""
    nonlocal t_mark, s_mark, pending
    fetched = jax.device_get([m for _, m in pending])
    steps_done = [s for s, _ in pending]
    pending = []
    records = []
    for s, m in zip(steps_done, fetched):
      bad = [k for k, v in m.items() if not math.isfinite(float(v))]
      if bad:
        good = ckpt.latest_step()
        where = (f"the last good checkpoint is step {good} in {ckpt.directory}"
                 if good is not None else "no checkpoint was written")
        raise NonFiniteLossError(
            f"non-finite {', '.join(bad)} at step {s}; training stopped and "
            f"{where}. Lower the learning rate or change the objective",
            step=s)
      if s % tc.log_every == 0 or s == total:
        records.append({"step": s, **{k: float(v) for k, v in m.items()}})
    now = time.perf_counter()
    if records and step > s_mark:
      # Training steps only: the clock restarts after evaluation and saves.
      records[-1]["steps_per_sec"] = (step - s_mark) / max(now - t_mark, 1e-9)
    t_mark, s_mark = now, step
    return records

  bar = tqdm(total=total, initial=start, disable=not tc.progress or not writer,
             desc=f"{config.family} {config.data.name}", unit="step",
             dynamic_ncols=True)
  try:
    for i in range(start, total):
      batch = parallel.put_batch(task.make_batch(train_split, sampler, i),
                                 shardings)
      state, metrics = step_fn(state, batch, step_key)
      step = i + 1
      pending.append((step, metrics))
      bar.update(1)
      do_log = step % tc.log_every == 0 or step == total
      do_eval = step % tc.eval_every == 0 or step == total
      do_ckpt = step % tc.checkpoint_every == 0 or step == total
      if not (do_log or do_eval or do_ckpt):
        continue
      records = flush(step)
      if do_eval:
        outputs = task.evaluate(state, step, dataset)
        write_outputs(workdir, step, outputs)
        if records and records[-1]["step"] == step:
          records[-1].update(outputs.scalars)
        elif outputs.scalars:
          records.append({"step": step, **outputs.scalars})
      if records:
        if writer:
          metrics_log.write(records)
        last = records[-1]
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()
                         if k.startswith(LOSS_KEYS_PREFIX)}, refresh=False)
      if do_ckpt:
        ckpt.save(step, state, {"family": config.family, "step": step,
                                **task.checkpoint_metadata(state)})
      t_mark = time.perf_counter()
  finally:
    bar.close()
  return {"step": _step_of(state), "workdir": str(workdir),
          "last_metrics": last, "state": state}


class Run(NamedTuple):
  """A trained run, restored for sampling or analysis."""

  task: Any
  state: Any
  config: ml_collections.ConfigDict
  step: int
  metadata: dict


def load_run(workdir, step: int | None = None, *,
             devices: list | None = None) -> Run:
  """Rebuilds a run's task and restores a checkpoint onto this machine.

  The state is restored onto `devices` (default: the first local device),
  whatever topology the run was trained on.

  Args:
    workdir: a folder written by `train_and_evaluate`.
    step: checkpoint step; None for the latest readable one.
    devices: devices to replicate the state on.

  Returns:
    Run(task, state, config, step, metadata).
  """
  workdir = pathlib.Path(workdir)
  config = read_run_config(workdir)
  try:
    task_cls = validate_config(config)
    task = task_cls(config)
  except ConfigError as e:
    raise CheckpointError(f"{workdir / CONFIG_FILE}: {e}") from None
  mesh = jax.sharding.Mesh(np.asarray(devices or jax.devices()[:1]),
                           (parallel.DATA_AXIS,))
  abstract = _abstract_state(task, jax.random.key(0), parallel.replicated(mesh))
  ckpt_dir = workdir / CHECKPOINT_DIR
  with Checkpointer(ckpt_dir, create=False) as ckpt:
    restored = (ckpt.restore_latest(abstract) if step is None
                else ckpt.restore(abstract, step))
  task.restore_metadata(dict(restored.metadata))
  return Run(task, restored.state, config, restored.step,
             dict(restored.metadata))


def generate_samples(task, state, n: int, seed: int,
                     options: dict[str, Any] | None = None,
                     batch_size: int = 256) -> dict[str, np.ndarray]:
  """n samples from `task.generate`, in batches of `batch_size`.

  Batch b uses key fold_in(key(seed), b), so the first samples of a large
  request equal a smaller request's with the same seed and batch size.
  """
  if n < 1:
    raise ConfigError(f"--n must be >= 1, got {n}")
  options = dict(options or {})
  task.check_sample_options(options)
  key = jax.random.key(seed)
  size = min(batch_size, n)
  parts = [task.generate(state, jax.random.fold_in(key, b), size, options)
           for b in range(math.ceil(n / size))]
  return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
