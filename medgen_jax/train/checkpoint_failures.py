"""How orbax's failures become one quiet line (used by train/checkpoint.py).

Orbax reports a failed save or restore several times over: through absl and
asyncio loggers with tracebacks, from commit threads that keep writing after
the call raised, and, because it closes its event loop while TensorStore
still has reads or writes in flight, as "RuntimeError: Event loop is closed"
tracebacks at some later moment (often at interpreter exit). This module
silences and settles those leftovers (`quiet`, `settle`) and describes the
underlying error in a few words (`describe`, `errno_of`), so that
checkpoint.py can raise one CheckpointError line. It does not import orbax.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import re
import sys
import threading
import time
import warnings

from medgen_jax.errors import CheckpointError

log = logging.getLogger("medgen_jax")

# Loggers that print orbax's internal errors (with tracebacks) on failures.
_NOISY_LOGGERS = ("absl", "asyncio", "concurrent.futures", "orbax")
_MAX_DETAIL = 160


@contextlib.contextmanager
def quiet():
  """Runs an orbax call quietly; on failure, waits for its threads.

  Orbax logs every failure with a traceback (through absl and asyncio) and
  leaves un-awaited coroutines and un-retrieved task exceptions behind; the
  caller turns the failure into one CheckpointError line instead. Logger
  levels and hooks are restored afterwards, except that after a failure
  filters of orbax's late reports stay installed for the rest of the process
  (see `_UnraisableFilter`). With the "medgen_jax" logger at DEBUG nothing
  is silenced.
  """
  threads = set(threading.enumerate())
  loud = log.isEnabledFor(logging.DEBUG)
  loggers = [] if loud else [logging.getLogger(n) for n in _NOISY_LOGGERS]
  levels = [lg.level for lg in loggers]
  for lg in loggers:
    lg.setLevel(logging.CRITICAL + 1)
  previous_hook = sys.unraisablehook
  if not loud:
    sys.unraisablehook = _UnraisableFilter(previous_hook,
                                           everything_async=True)
  try:
    with warnings.catch_warnings():
      if not loud:
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message=r"coroutine .* was never awaited")
      try:
        yield
      except BaseException:
        _join_orbax_threads(threads)
        if not loud:
          previous_hook = _with_late_report_filter(previous_hook)
          _filter_asyncio_leftovers()
        raise
  finally:
    if not loud and isinstance(sys.unraisablehook, _UnraisableFilter):
      sys.unraisablehook = previous_hook
    for lg, level in zip(loggers, levels):
      lg.setLevel(level)


def _join_orbax_threads(before: set[threading.Thread],
                        timeout: float = 60.0) -> None:
  """Waits for orbax threads started since `before` to finish.

  When one item of a save fails, orbax raises at once while the commit
  threads of the other items go on writing into the temporary folder (and
  log their own failures with tracebacks later, e.g. at exit). Waiting for
  them lets the caller clean up a folder nothing writes to any more.
  """
  deadline = time.monotonic() + timeout
  for thread in threading.enumerate():
    if (thread not in before and thread is not threading.current_thread()
        and type(thread).__module__.startswith("orbax")):
      thread.join(max(0.0, deadline - time.monotonic()))


class _UnraisableFilter:
  """A sys.unraisablehook that drops orbax's asyncio leftovers.

  When one of several concurrent reads or writes fails, orbax closes its
  event loop while TensorStore still has the others in flight; when they
  finish, TensorStore calls back into the closed loop and Python reports
  "RuntimeError: Event loop is closed" with a traceback, at any later
  moment, often at interpreter exit. Those reports are dropped (for the
  rest of the process, once a failure happened), and while orbax works
  (`everything_async`) also its abandoned coroutines and futures; anything
  else is passed on.
  """

  def __init__(self, previous, everything_async: bool = False):
    self.previous = previous
    self.everything_async = everything_async

  def __call__(self, unraisable):
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
      return
    if self.everything_async and (
        asyncio.iscoroutine(unraisable.object)
        or isinstance(unraisable.object, asyncio.Future)):
      return
    self.previous(unraisable)


def _with_late_report_filter(hook):
  """`hook`, wrapped (once) in the filter of late "Event loop is closed"."""
  inner = hook
  while isinstance(inner, _UnraisableFilter):
    if not inner.everything_async:
      return hook
    inner = inner.previous
  return _UnraisableFilter(hook)


def _filter_asyncio_leftovers() -> None:
  asyncio_log = logging.getLogger("asyncio")
  if not any(isinstance(f, _OrbaxLeftoverFilter) for f in asyncio_log.filters):
    asyncio_log.addFilter(_OrbaxLeftoverFilter())


def settle(error: CheckpointError) -> CheckpointError:
  """Settles orbax's leftovers after a failure, then returns `error`.

  Call it outside the `except` block, once orbax's exception (whose frames
  hold its abandoned futures) is gone. When one of several concurrent reads
  or writes fails, orbax closes its event loop while TensorStore still has
  the others in flight; their asyncio tasks stay alive until TensorStore
  finishes them. This waits (at most a second) until those tasks are gone,
  collecting garbage while silenced, so asyncio reports them now, unseen,
  instead of with tracebacks at some later moment or at interpreter exit.
  """
  deadline = time.monotonic() + 1.0
  with quiet():
    while True:
      gc.collect()
      if not _abandoned_tasks() or time.monotonic() > deadline:
        break
      time.sleep(0.02)
  return error


def _abandoned_tasks() -> bool:
  """Whether asyncio tasks of a closed event loop are still alive."""
  return any(isinstance(o, asyncio.Task) and o.get_loop().is_closed()
             for o in gc.get_objects())


class _OrbaxLeftoverFilter(logging.Filter):
  """Drops asyncio's reports of tasks and futures orbax abandoned."""

  _MARKS = (f"{os.sep}orbax{os.sep}", "/orbax/")

  def filter(self, record: logging.LogRecord) -> bool:
    if any(m in record.getMessage() for m in self._MARKS):
      return False
    tb = record.exc_info[2] if record.exc_info else None
    while tb is not None:
      if any(m in tb.tb_frame.f_code.co_filename for m in self._MARKS):
        return False
      tb = tb.tb_next
    return True



def errno_of(e: BaseException) -> int | None:
  """The errno of an OSError in `e`'s chain, or read from its message."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno:
      return e.errno
    text = str(e)
    for code, marks in ((errno.ENOSPC, ("RESOURCE_EXHAUSTED",
                                        "No space left")),
                        (errno.EDQUOT, ("Disk quota exceeded",)),
                        (errno.EROFS, ("Read-only file system",)),
                        (errno.EACCES, ("PERMISSION_DENIED",
                                        "Permission denied"))):
      if any(m in text for m in marks):
        return code
    e = e.__cause__ or e.__context__
  return None


_TS_CODES = {"OUT_OF_RANGE": "truncated data", "DATA_LOSS": "corrupt data",
             "NOT_FOUND": "missing data"}


def describe(e: BaseException, path: str | None = None) -> str:
  """A short, one-line description of an orbax/TensorStore error."""
  text = " ".join(str(e).split())
  if isinstance(e, FileNotFoundError):
    name = e.filename or (re.findall(r"File (\S+) not found", text) or [""])[0]
    return f"missing file {_rel(str(name), path)}" if name else "missing file"
  if isinstance(e, json.JSONDecodeError):
    return f"invalid JSON ({e.msg})"
  code = re.match(r"([A-Z_]+): ", text)
  files = re.findall(r'(?:local )?file "([^"]+)"', text)
  if code and files:
    what = _TS_CODES.get(code.group(1), "unreadable data")
    return f"{what} in {_rel(files[-1], path)}"
  text = re.sub(r"\s*\[tensorstore_spec.*", "", text) or type(e).__name__
  return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL - 3] + "..."


def _rel(name: str, path: str | None) -> str:
  if path and name.startswith(path):
    return name[len(path):].lstrip("/") or name
  return name


def mkdir_reason(directory: str, e: OSError) -> str:
  if e.errno == errno.ENOTDIR:
    parent = directory
    while parent != os.path.dirname(parent):
      parent = os.path.dirname(parent)
      if os.path.exists(parent):
        if not os.path.isdir(parent):
          return f"{parent} is a file, not a folder"
        break
  if e.errno == errno.ENAMETOOLONG:
    return "the name is too long"
  return e.strerror or str(e)
