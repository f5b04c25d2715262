"""`train_and_evaluate(config, workdir)`: the training loop of every family.

The workdir of a run holds:
  config.json         the full, resolved config (rebuilds the model alone)
  metrics.jsonl       one JSON object per logged step
  samples/*.png       periodic outputs (sample grids for GANs)
  checkpoints/<step>  orbax checkpoints, the last `train.keep_checkpoints`

Guarantees:
  * a run with the same config and seed is reproducible, and a run resumed
    from checkpoint k reaches exactly the state of an uninterrupted run
    (batches, RNG and state are all functions of the step count);
  * a non-finite loss stops the run with `NonFiniteLossError` naming the
    first bad step, before any checkpoint of a poisoned state is written;
  * an existing run is never overwritten: continue it with `resume=True`.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from medgen_jax.configs import flatten
from medgen_jax.data.pipeline import BatchSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import CheckpointError, ConfigError, NonFiniteLossError
from medgen_jax.outputs import MetricsLog, write_json
from medgen_jax.train import parallel
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.tasks import get_task

log = logging.getLogger("medgen_jax")

LOSS_KEYS_PREFIX = ("d_loss", "g_loss", "loss")


def check_resume_compatible(saved: dict, new: dict, allowed: tuple[str, ...],
                            path: pathlib.Path) -> None:
  """Raises ConfigError if `new` changes a field that affects the math."""
  a, b = flatten(saved), flatten(new)
  changed = sorted(k for k in set(a) | set(b)
                   if a.get(k) != b.get(k) and k not in allowed)
  if changed:
    detail = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:5])
    raise ConfigError(
        f"--resume with settings that differ from {path} ({detail}); resume "
        "with the same settings (only --steps may change) or start a new "
        "--workdir")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir,
                       *, resume: bool = False) -> dict[str, Any]:
  """Trains the family named by `config.family`; see the module docstring.

  Args:
    config: experiment config (e.g. configs/gan.py), modified in place with
      the fields resolved from the data.
    workdir: output folder.
    resume: continue the run in `workdir` from its latest checkpoint.

  Returns:
    Summary: final step, last logged metrics, workdir paths.
  """
  workdir = pathlib.Path(workdir)
  task_cls = get_task(config.family)
  config_path = workdir / "config.json"
  ckpt_dir = workdir / "checkpoints"
  tc = config.train
  for key in ("steps", "log_every", "sample_every", "checkpoint_every"):
    if tc[key] < 1:
      raise ConfigError(f"train.{key} must be >= 1, got {tc[key]}")

  saved = None
  if resume:
    if not config_path.exists():
      raise CheckpointError(
          f"--resume: {config_path} not found; there is no run to continue "
          "in this --workdir")
    saved = json.loads(config_path.read_text())
  elif config_path.exists() or (ckpt_dir.exists() and any(ckpt_dir.iterdir())):
    raise CheckpointError(
        f"{workdir} already holds a run; pass --resume to continue it or "
        "choose another --workdir")

  dataset = load_dataset(config.data)
  task = task_cls(config, dataset)  # validates and resolves config
  if saved is not None:
    check_resume_compatible(saved, config.to_dict(), task.resumable_overrides,
                            config_path)

  mesh = parallel.make_mesh(tc.num_devices)
  parallel.check_batch_size(tc.batch_size, mesh)
  sampler = BatchSampler(dataset.split("train"), tc.batch_size,
                         seed=config.data.seed)

  workdir.mkdir(parents=True, exist_ok=True)
  write_json(config_path, config.to_dict())
  metrics_log = MetricsLog(workdir / "metrics.jsonl")

  init_key, step_key = jax.random.split(jax.random.key(config.seed))
  rep = parallel.replicated(mesh)
  init = jax.jit(task.init_state, out_shardings=rep)
  ckpt = Checkpointer(ckpt_dir, keep=tc.keep_checkpoints)
  try:
    if resume and ckpt.latest_step() is not None:
      abstract = jax.eval_shape(task.init_state, init_key)
      abstract = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
          abstract)
      state = ckpt.restore(abstract)
      log.info("resumed from step %d of %s", int(state.step), ckpt_dir)
    else:
      state = init(init_key)
    start = int(state.step)
    metrics_log.truncate_after(start)
    step_fn = parallel.jit_sharded_step(task.train_step, mesh, task.batch_axis)
    return _run(task, state, step_fn, step_key, sampler, mesh, start, config,
                workdir, ckpt, metrics_log)
  finally:
    ckpt.close()


def _run(task, state, step_fn, step_key, sampler, mesh, start, config,
         workdir, ckpt, metrics_log):
  tc = config.train
  total = tc.steps
  pending: list[tuple[int, dict]] = []
  last: dict[str, Any] = {}
  t_last, s_last = time.perf_counter(), start

  def flush(step: int) -> dict[str, Any]:
    """Fetches pending metrics, checks them, logs every log_every-th step."""
    nonlocal t_last, s_last, pending
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
            f"{where}. Lower the learning rates or change --loss", step=s)
      if s % tc.log_every == 0 or s == total:
        records.append({"step": s, **{k: float(v) for k, v in m.items()}})
    now = time.perf_counter()
    if records and step > s_last:
      records[-1]["steps_per_sec"] = (step - s_last) / max(now - t_last, 1e-9)
      t_last, s_last = now, step
    return records

  bar = tqdm(total=total, initial=start, disable=not tc.progress,
             desc=f"{config.family} {config.data.name}", unit="step",
             dynamic_ncols=True)
  try:
    for i in range(start, total):
      batch = parallel.put_batch(task.batch(sampler, i), mesh, task.batch_axis)
      state, metrics = step_fn(state, batch, step_key)
      step = i + 1
      pending.append((step, metrics))
      bar.update(1)
      do_log = step % tc.log_every == 0 or step == total
      do_eval = step % tc.sample_every == 0 or step == total
      do_ckpt = step % tc.checkpoint_every == 0 or step == total
      if do_log or do_eval or do_ckpt:
        records = flush(step)
        if do_eval:
          extra = task.evaluate(state, step, workdir)
          if records and records[-1]["step"] == step:
            records[-1].update(extra)
          else:
            records.append({"step": step, **extra})
        if records:
          metrics_log.write(records)
          last = records[-1]
          bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()
                           if k.startswith(LOSS_KEYS_PREFIX)}, refresh=False)
        if do_ckpt:
          ckpt.save(step, state)
  finally:
    bar.close()
  return {"step": int(state.step), "workdir": str(workdir),
          "last_metrics": last, "state": state}


def load_run(workdir, step: int | None = None):
  """Rebuilds a run's task and restores its state (for sampling, analysis).

  Returns:
    (task, state, config) for the checkpoint `step` (default: latest).
  """
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.exists():
    raise CheckpointError(
        f"{config_path} not found; --workdir must be a folder written by "
        "`medgen train`")
  try:
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{config_path} is not valid JSON ({e})") from None
  task = get_task(config.family)(config)
  abstract = jax.eval_shape(task.init_state, jax.random.key(0))
  with Checkpointer(workdir / "checkpoints") as ckpt:
    state = ckpt.restore(abstract, step)
  return task, state, config
