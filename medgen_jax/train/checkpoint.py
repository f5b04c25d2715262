"""Checkpoints: the only module that imports orbax.

`Checkpointer` wraps `orbax.checkpoint.CheckpointManager`. A checkpoint is a
folder named after its step, holding two orbax items:

  <directory>/<step>/state/     the state pytree (StandardSave: arrays, ints)
  <directory>/<step>/metadata/  a JSON dict saved beside it (JsonSave), e.g.
                                a privacy accountant's spent budget

Checkpoints written by the previous version of this module (the state alone,
as orbax's single `default` item) still restore, with metadata `{}`.

Guarantees:
  * saves are synchronous (complete on disk when `save` returns) and atomic:
    orbax writes into `<step>.orbax-checkpoint-tmp*` and renames it when
    complete, so a crash, Ctrl-C or full disk mid-save leaves the previous
    checkpoints intact; a failed save removes its temporary folder, and the
    next save removes any left by a crash;
  * the last `keep` checkpoints are kept (stray folders never count);
  * `restore` lands every array on the sharding of the abstract target,
    whatever device topology wrote the checkpoint;
  * every failure a user can meet (full disk, no permission, a file where
    the folder should be, damaged or missing files, a checkpoint of another
    model) is a one-line `CheckpointError` naming the folder and step; orbax's
    own error logs and tracebacks are silenced while it works (set the
    "medgen_jax" logger to DEBUG to keep them).

Folders in `directory` that are not complete checkpoints (`junk/`, an empty
`9/`, a leftover temporary folder) are ignored: they never count as steps,
are never pruned and never block `restore_latest`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath  # orbax's path type (a dependency of orbax)

from medgen_jax.errors import CheckpointError
from medgen_jax.train.checkpoint_failures import (describe, errno_of,
                                                  mkdir_reason, quiet, settle)

log = logging.getLogger("medgen_jax")

_STATE = "state"        # item names inside a step folder
_METADATA = "metadata"
_OLD_STATE = "default"  # the single item of the previous format
_STEP_METADATA = "_CHECKPOINT_METADATA"  # written by orbax in every step folder
_TMP = ".orbax-checkpoint-tmp"
_TMP_RE = re.compile(r"^\d+" + re.escape(_TMP))
_FREE_SPACE = ("free space (or keep fewer checkpoints) and continue with "
               "--resume")


class Restored(NamedTuple):
  """What `Checkpointer.restore` returns."""

  state: Any      # the restored pytree, on the target's shardings
  metadata: dict  # the JSON metadata saved beside it ({} if none)
  step: int


class _StepError(CheckpointError):
  """A CheckpointError about one step.

  `reason` is the short cause; `damaged` is False when the checkpoint is
  readable but does not match the target (older ones will not either).
  """

  def __init__(self, message: str, step: int, reason: str,
               damaged: bool = True):
    super().__init__(message)
    self.step = step
    self.reason = reason
    self.damaged = damaged


class Checkpointer:
  """Saves and restores a training-state pytree under `directory`.

  Args:
    directory: folder of the checkpoints.
    keep: how many of the most recent checkpoints to keep (at least 1).
    create: create `directory` if missing and allow saving. Readers (such
      as `medgen sample`) pass False: nothing is created or deleted, and a
      missing folder is an error.

  Raises:
    CheckpointError: `directory` is a file, cannot be created or written,
      or (with create=False) does not exist.
  """

  def __init__(self, directory: str | os.PathLike, keep: int = 3, *,
               create: bool = True):
    self.directory = os.path.abspath(os.fspath(directory))
    self.keep = max(1, int(keep))
    self._writable = create
    self._manager = None
    d = self.directory
    if os.path.exists(d) and not os.path.isdir(d):
      raise CheckpointError(
          f"checkpoint folder {d} is a file, not a folder; rename or remove "
          "that file, or choose another --workdir")
    if not create and not os.path.isdir(d):
      raise CheckpointError(
          f"no checkpoint folder {d}; --workdir must be a folder written by "
          "`medgen train`")
    if create:
      try:
        os.makedirs(d, exist_ok=True)
      except OSError as e:
        raise CheckpointError(
            f"cannot create checkpoint folder {d}: {mkdir_reason(d, e)}; "
            "choose a --workdir you can write to") from None
      if not os.access(d, os.W_OK | os.X_OK):
        raise CheckpointError(
            f"checkpoint folder {d} is not writable; fix its permissions or "
            "choose another --workdir")
    error = None
    try:
      with quiet():
        self._manager = ocp.CheckpointManager(
            d,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=None,  # pruned here, so strays never count
                create=False,
                read_only=not create,
                cleanup_tmp_directories=False,  # done at save, never by readers
                enable_async_checkpointing=False,
            ),
            item_handlers={_STATE: ocp.StandardCheckpointHandler(),
                           _METADATA: ocp.JsonCheckpointHandler()})
    except Exception as e:  # pylint: disable=broad-except
      error = CheckpointError(f"cannot open checkpoint folder {d}: "
                              f"{describe(e)}")
    if error is not None:
      raise settle(error)

  # Listing.

  def all_steps(self) -> list[int]:
    """The steps of the complete checkpoints, oldest first.

    A complete checkpoint is a folder named after its step holding orbax's
    step metadata and a state item; orbax only gives a folder that name once
    it is complete, so anything else there is a stray and is ignored.
    """
    try:
      names = os.listdir(self.directory)
    except FileNotFoundError:
      return []
    except OSError as e:
      raise CheckpointError(
          f"cannot list checkpoint folder {self.directory}: {e.strerror}; "
          "check its permissions") from None
    steps = []
    for name in names:
      if name.isdigit() and name.isascii() and str(int(name)) == name:
        path = os.path.join(self.directory, name)
        if os.path.isfile(os.path.join(path, _STEP_METADATA)) and (
            os.path.isdir(os.path.join(path, _STATE))
            or os.path.isdir(os.path.join(path, _OLD_STATE))):
          steps.append(int(name))
    return sorted(steps)

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step, or None if there is none."""
    steps = self.all_steps()
    return steps[-1] if steps else None

  # Saving.

  def save(self, step: int, state: Any, metadata: dict | None = None) -> None:
    """Writes `state` (and `metadata`) as checkpoint `step`.

    Complete on disk when this returns, and atomic: a failure leaves the
    previous checkpoints as they were. An existing folder named `step` (a
    damaged checkpoint being re-written after a resume) is replaced. Then all
    but the newest `keep` checkpoints up to `step` are deleted.

    Args:
      step: the training step (a non-negative int); names the folder.
      state: the pytree to save (jax/numpy arrays, Python scalars).
      metadata: a JSON-serialisable dict saved in the same checkpoint
        (numpy/jax scalars and arrays are stored as numbers and lists).

    Raises:
      CheckpointError: the metadata is not JSON, or the checkpoint could not
        be written (full disk, no permission, ...); the message names the
        last complete checkpoint.
    """
    manager = self._require_open()
    step = _check_step(step)
    if not self._writable:
      raise CheckpointError(
          f"cannot write checkpoint {step} in {self.directory}: it was opened "
          "read-only (create=False)")
    meta = _jsonable(metadata, step)
    self._remove_tmp_folders()
    self._check_space(step, state)
    final = os.path.join(self.directory, str(step))
    aside = (f"{final}{_TMP}-replaced" if os.path.lexists(final)
             and jax.process_index() == 0 else None)
    error = None
    try:
      if aside is not None:
        _rmtree(aside)
        os.replace(final, aside)
        log.info("replacing checkpoint folder %s", final)
      with quiet():
        manager.reload()  # forget steps deleted outside orbax
        manager.save(step, force=True, args=ocp.args.Composite(**{
            _STATE: ocp.args.StandardSave(state),
            _METADATA: ocp.args.JsonSave(meta)}))
        manager.wait_until_finished()
    except BaseException as e:  # Ctrl-C too: clean up, then re-raise
      if aside is not None and os.path.lexists(aside) and not os.path.lexists(
          final):
        os.replace(aside, final)  # put back what was there
      self._remove_tmp_folders(step)
      if not isinstance(e, Exception):
        raise
      error = CheckpointError(self._save_error(step, e))
    if error is not None:
      settle(error)
      self._remove_tmp_folders(step)  # again: abandoned writes land late
      raise error
    if aside is not None:
      _rmtree(aside)
    self._prune(step)

  def _check_space(self, step: int, state: Any) -> None:
    """Refuses a save that cannot fit (the raw size is an upper bound)."""
    need = sum(int(getattr(x, "nbytes", 0) or 0)
               for x in jax.tree.leaves(state))
    try:
      usage = shutil.disk_usage(self.directory)
    except OSError:
      return
    if usage.total > 0 and usage.free < need:
      raise CheckpointError(
          f"cannot write checkpoint {step} in {self.directory}: "
          f"{os.strerror(errno.ENOSPC)} (needs about {_size(need)}, "
          f"{_size(usage.free)} free); {_FREE_SPACE}; {self._last_complete()}")

  def _save_error(self, step: int, e: BaseException) -> str:
    code = errno_of(e)
    if code in (errno.ENOSPC, errno.EDQUOT):
      why = os.strerror(code)
      todo = _FREE_SPACE
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
      why = os.strerror(code)
      todo = f"make {self.directory} writable and continue with --resume"
    else:
      why = describe(e)
      todo = "fix the cause and continue with --resume"
    return (f"cannot write checkpoint {step} in {self.directory}: {why}; "
            f"{todo}; {self._last_complete()}")

  def _last_complete(self) -> str:
    last = self.latest_step()
    return ("no checkpoint has been written yet" if last is None
            else f"the last complete checkpoint is step {last}")

  def _prune(self, step: int) -> None:
    """Deletes all but the newest `keep` checkpoints up to `step`."""
    if jax.process_index() != 0:
      return
    old = [s for s in self.all_steps() if s <= step][:-self.keep]
    for s in old:
      path = os.path.join(self.directory, str(s))
      doomed = f"{path}{_TMP}-deleted"  # unlisted at once, even if we crash
      _rmtree(doomed)
      try:
        os.replace(path, doomed)
      except OSError as e:
        log.warning("could not delete old checkpoint %s: %s", path, e.strerror)
        continue
      _rmtree(doomed)

  def _remove_tmp_folders(self, step: int | None = None) -> None:
    """Removes temporary folders of interrupted saves (of `step`, or all)."""
    if jax.process_index() != 0:
      return
    try:
      names = os.listdir(self.directory)
    except OSError:
      return
    prefix = None if step is None else f"{step}{_TMP}"
    for name in names:
      if (name.startswith(prefix) if prefix else _TMP_RE.match(name)):
        _rmtree(os.path.join(self.directory, name))

  # Restoring.

  def restore(self, abstract_state: Any, step: int | None = None) -> Restored:
    """Restores checkpoint `step` (default: the latest) onto a target.

    Args:
      abstract_state: pytree of jax.ShapeDtypeStruct (or arrays) of the same
        structure as the saved state. Each array lands on the leaf's
        sharding (a leaf without one: on the first local device), whatever
        topology wrote the checkpoint.
      step: which checkpoint; None for the latest.

    Returns:
      Restored(state, metadata, step).

    Raises:
      CheckpointError: there is no such checkpoint, it is damaged or
        incomplete, or it does not match `abstract_state`.
    """
    if step is None:
      step = self.latest_step()
      if step is None:
        raise CheckpointError(
            f"no checkpoint in {self.directory}; train first "
            "(medgen train ...)")
    return self._restore(_check_step(step), abstract_state)

  def restore_latest(self, abstract_state: Any) -> Restored:
    """Restores the newest readable checkpoint (for --resume and sampling).

    An unreadable checkpoint (damaged or deleted files, a stray folder named
    like a step) is skipped with one warning on the "medgen_jax" logger, and
    the next older one is tried.

    Args:
      abstract_state: as for `restore`.

    Returns:
      Restored(state, metadata, step) of the checkpoint restored.

    Raises:
      CheckpointError: there is no checkpoint, none can be read, or the
        newest readable one does not match `abstract_state`.
    """
    steps = self.all_steps()
    if not steps:
      raise CheckpointError(
          f"no checkpoint in {self.directory}; train first (medgen train ...)")
    failures = []
    for i, step in enumerate(reversed(steps)):
      try:
        return self._restore(step, abstract_state)
      except _StepError as e:
        if not e.damaged:
          raise
        failures.append(e)
        older = steps[-i - 2] if i + 1 < len(steps) else None
        if older is not None:
          log.warning("skipping checkpoint %d in %s: %s; trying step %d",
                      step, self.directory, e.reason, older)
    if len(failures) == 1:
      raise failures[0]
    tried = "; ".join(f"step {e.step}: {e.reason}" for e in failures)
    raise CheckpointError(
        f"no checkpoint in {self.directory} can be restored ({tried}); delete "
        "the damaged step folders or train again")

  def _restore(self, step: int, abstract_state: Any) -> Restored:
    manager = self._require_open()
    path = os.path.join(self.directory, str(step))
    new_format = os.path.isdir(os.path.join(path, _STATE))
    if not new_format and not os.path.isdir(os.path.join(path, _OLD_STATE)):
      raise _StepError(
          f"no checkpoint {step} in {self.directory} (complete checkpoints: "
          f"{_steps_text(self.all_steps())})", step, "not a checkpoint")
    target = jax.tree.map(_as_target, abstract_state)
    metadata: Any = {}
    error = None
    if new_format:
      try:
        with quiet():
          metadata = manager.restore(step, args=ocp.args.Composite(
              **{_METADATA: ocp.args.JsonRestore()}))[_METADATA]
        if not isinstance(metadata, dict):
          raise ValueError("it is not a JSON object")
      except Exception as e:  # pylint: disable=broad-except
        reason = f"its metadata is unreadable ({describe(e, path)})"
        error = _StepError(f"checkpoint {step} in {self.directory}: {reason}; "
                           f"{self._other_steps(step, path)}", step, reason)
    if error is not None:
      raise settle(error)
    try:
      with quiet():
        if new_format:
          state = manager.restore(step, args=ocp.args.Composite(
              **{_STATE: ocp.args.StandardRestore(target)}))[_STATE]
        else:
          state = _restore_old(os.path.join(path, _OLD_STATE), target)
    except Exception as e:  # pylint: disable=broad-except
      error = self._restore_error(step, path, new_format, target, e)
    if error is not None:
      raise settle(error)
    return Restored(state, metadata, step)

  def _restore_error(self, step, path, new_format, target, e) -> _StepError:
    mismatch = _mismatch(os.path.join(path, _STATE if new_format
                                      else _OLD_STATE), target)
    if mismatch:
      reason = f"it does not match the model ({mismatch})"
      todo = "was the config edited since it was saved?"
    else:
      reason = f"it is damaged or incomplete ({describe(e, path)})"
      todo = self._other_steps(step, path)
    return _StepError(f"checkpoint {step} in {self.directory}: {reason}; "
                      f"{todo}", step, reason, damaged=not mismatch)

  def _other_steps(self, step: int, path: str) -> str:
    others = [str(s) for s in self.all_steps() if s != step]
    if not others:
      return f"delete {path} and train again"
    return f"restore another step ({', '.join(others)}) or delete {path}"

  # Lifetime.

  def _require_open(self):
    if self._manager is None:
      raise RuntimeError(f"the Checkpointer of {self.directory} is closed")
    return self._manager

  def close(self) -> None:
    """Waits for orbax's outstanding work and releases it (idempotent)."""
    manager, self._manager = self._manager, None
    if manager is not None:
      try:
        with quiet():
          manager.close()
      except Exception as e:  # pylint: disable=broad-except
        log.debug("closing the checkpoint manager of %s: %s",
                  self.directory, e)

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _restore_old(path: str, target: Any) -> Any:
  """Restores a checkpoint of the previous format (a single orbax item)."""
  checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
  try:
    return checkpointer.restore(path, args=ocp.args.StandardRestore(target))
  finally:
    checkpointer.close()


def _as_target(x):
  """A leaf of the restore target: shape, dtype and sharding."""
  if isinstance(x, jax.ShapeDtypeStruct) or hasattr(x, "dtype"):
    sharding = getattr(x, "sharding", None)
    if not isinstance(sharding, jax.sharding.Sharding):
      sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
  return x  # a Python scalar


def _mismatch(item_path: str, target: Any) -> str:
  """How the arrays saved in `item_path` differ from the target's.

  Returns '' if they do not, or if the saved metadata cannot be read (then
  the checkpoint is damaged rather than of another model).
  """
  handler = ocp.StandardCheckpointHandler()
  try:
    with quiet():
      tree = handler.metadata(epath.Path(item_path))
      handler.close()
    tree = getattr(tree, "tree", tree)
    saved = _shapes(tree, lambda x: not isinstance(x, (dict, list, tuple)))
  except Exception:  # pylint: disable=broad-except
    return ""  # the metadata itself is unreadable: damage, not mismatch
  wanted = _shapes(target, None)
  missing = [k for k in wanted if k not in saved]
  extra = [k for k in saved if k not in wanted]
  wrong = [k for k in wanted if k in saved and saved[k] != wanted[k]]
  more = lambda keys: f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
  parts = []
  if wrong:
    k = wrong[0]
    parts.append(f"'{k}' is {saved[k]} in the checkpoint but {wanted[k]} in "
                 f"the model{more(wrong)}")
  if missing:
    parts.append(f"'{missing[0]}' is in the model but not in the checkpoint"
                 f"{more(missing)}")
  if extra:
    parts.append(f"'{extra[0]}' is in the checkpoint but not in the model"
                 f"{more(extra)}")
  return "; ".join(parts)


def _shapes(tree, is_leaf) -> dict[str, tuple]:
  """{'params/w': shape} for every leaf of `tree` that has a shape."""
  out = {}
  for keys, leaf in jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=is_leaf)[0]:
    shape = getattr(leaf, "shape", None)
    if shape is None and isinstance(leaf, (int, float, np.number)):
      shape = ()
    if shape is not None:
      out["/".join(_key_name(k) for k in keys)] = tuple(shape)
  return out


def _key_name(k) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


# Small helpers.


def _check_step(step) -> int:
  """`step` as an int; CheckpointError unless a non-negative integer."""
  try:
    value = np.asarray(step)
    ok = value.ndim == 0 and value.dtype.kind in "iu" and int(value) >= 0
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise CheckpointError(
        f"checkpoint step must be a non-negative integer, got {step!r}")
  return int(value)


def _jsonable(metadata, step: int) -> dict:
  """Checks `metadata` is a JSON dict; numpy/jax values become numbers."""
  if metadata is None:
    return {}
  if not isinstance(metadata, Mapping):
    raise CheckpointError(
        f"metadata of checkpoint {step} must be a dict, got "
        f"{type(metadata).__name__}")

  def default(o):
    if isinstance(o, (np.ndarray, np.generic, jax.Array)):
      return np.asarray(o).tolist()
    raise TypeError(f"values of type {type(o).__name__} are not JSON")

  try:
    return json.loads(json.dumps(dict(metadata), default=default))
  except (TypeError, ValueError) as e:
    where = _bad_json_path(metadata)
    raise CheckpointError(
        f"metadata of checkpoint {step} cannot be saved as JSON ("
        + (f"'{where[0]}' holds a {where[1]}" if where else str(e))
        + "); pass numbers, strings, lists and dicts") from None


def _bad_json_path(value, path: str = "") -> tuple[str, str] | None:
  """(path, type name) of the first value in `value` JSON cannot hold."""
  if isinstance(value, Mapping):
    for key, item in value.items():
      if not isinstance(key, (str, int, float, bool)) and key is not None:
        return f"{path}{key!r}", f"key of type {type(key).__name__}"
      found = _bad_json_path(item, f"{path}{key}/")
      if found:
        return found
    return None
  if isinstance(value, (list, tuple)):
    for i, item in enumerate(value):
      found = _bad_json_path(item, f"{path}{i}/")
      if found:
        return found
    return None
  if value is None or isinstance(value, (str, int, float, bool, np.ndarray,
                                         np.generic, jax.Array)):
    return None
  return path.rstrip("/"), f"value of type {type(value).__name__}"


def _steps_text(steps: list[int]) -> str:
  return "steps " + ", ".join(map(str, steps)) if steps else "none"


def _size(n: int) -> str:
  for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
    if n >= scale:
      return f"{n / scale:.1f} {unit}"
  return f"{n} bytes"


def _rmtree(path: str) -> None:
  """Removes `path`; retries briefly while abandoned writes still land."""
  for _ in range(20):
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
      return
    if not os.path.isdir(path):
      with contextlib.suppress(OSError):
        os.remove(path)
      return
    time.sleep(0.05)
