"""Checkpoints: the only module that imports orbax.

Wraps `orbax.checkpoint.CheckpointManager`:
  * saves are atomic (orbax writes into a temporary folder and renames it
    when complete), so a crash or Ctrl-C mid-save leaves the previous
    checkpoint as the latest; leftover temporary folders are cleaned up the
    next time the manager opens;
  * saves are synchronous, so once `save` returns the checkpoint is on disk;
  * the last `keep` checkpoints are kept;
  * restore takes an abstract target (shapes, dtypes, shardings; e.g. from
    `jax.eval_shape`), so the restored arrays land where the step expects.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from medgen_jax.errors import CheckpointError


class Checkpointer:
  """Saves and restores a training-state pytree under `directory`.

  Args:
    directory: folder of the checkpoints (created if missing).
    keep: how many of the most recent checkpoints to keep.
  """

  def __init__(self, directory: str | os.PathLike, keep: int = 3):
    self.directory = os.path.abspath(os.fspath(directory))
    try:
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(
              max_to_keep=max(1, keep),
              create=True,
              cleanup_tmp_directories=True,
              enable_async_checkpointing=False,
          ))
    except OSError as e:
      raise CheckpointError(
          f"cannot create checkpoint folder {self.directory}: {e}") from None

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    """Writes `state` as checkpoint `step` (complete when this returns)."""
    self._manager.save(int(step), args=ocp.args.StandardSave(state),
                       force=True)
    self._manager.wait_until_finished()

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restores checkpoint `step` (default: latest) into the target structure.

    Args:
      abstract_state: pytree of jax.ShapeDtypeStruct (with shardings) or
        arrays, of the same structure as the saved state.
      step: which checkpoint; None for the latest.

    Raises:
      CheckpointError: there is no checkpoint, or it does not fit the target.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(
          f"no checkpoint in {self.directory}; train first (medgen train ...)")
    target = jax.tree.map(_as_abstract, abstract_state)
    try:
      return self._manager.restore(
          step, args=ocp.args.StandardRestore(target))
    except (ValueError, KeyError, FileNotFoundError, TypeError) as e:
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise CheckpointError(
          f"checkpoint {step} in {self.directory} does not match the model "
          f"built from config.json ({first[:300]}); was the config edited?"
      ) from None

  def close(self) -> None:
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _as_abstract(x):
  if isinstance(x, jax.ShapeDtypeStruct):
    return x
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return jax.ShapeDtypeStruct(x.shape, x.dtype,
                                sharding=getattr(x, "sharding", None))
  return x
