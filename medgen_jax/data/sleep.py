"""Sleep series datasets: hypnograms and wrist actigraphy.

    medgen train rnn --data hypnogram:night.txt --window 120 --stride 20
    medgen train rnn --data hypnogram:../shared/data/sleep/hypnograms \
        --test-records sub-02_hypno_30s --window 120 --stride 20
    medgen train rnn --data actigraphy:../shared/data/sleep/actigraphy \
        --test-records example_05 --window 1440 --stride 1440

`hypnogram:PATH` and `actigraphy:PATH` take a file, a folder (every readable
file in it, searched non-recursively) or comma-separated files. Each file is
one record (one night, one subject's recording); the records' files are read
by data/hypnogram_files.py and data/actigraphy_files.py.

What a dataset holds (the "series" schema of data/series.py, plus "t0"):
  x: float32 [n, window, 1]: the stage code (0 W .. 4 REM) or the count;
    0.0 at masked steps.
  mask: bool [n, window]: False for unscored / artefact / movement epochs,
    non-wear (zero runs of --nonwear-minutes, the diary's NOWEAR periods, gaps)
    and padding.
  t0: float32 [n]: the window's first epoch in seconds: since the start of
    the record (lights-off) for hypnograms, since midnight for actigraphy.
Values are never normalised: they are classes or counts (metadata "values":
categorical | counts), so --normalize is ignored and recorded as "none".

Windows are --window epochs every --stride epochs. A hypnogram's windows
start at the record's start (lights-off); actigraphy windows start at clock
times that are multiples of the stride after midnight (with a stride of a
day, every window is a calendar day; epochs before the record starts are
padding), so time of day means the same in every window. Splits: one record
is cut into contiguous time blocks (train, then val, then test); several
records are split whole (a subject is never in two splits), by
--test-records NAMES or by --val-fraction / --test-fraction.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Sequence

import numpy as np

from medgen_jax.data import series
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.registry import PREFIXES
from medgen_jax.data.sleep_stages import EPOCH_SECONDS, STAGE_NAMES
from medgen_jax.errors import ConfigError, DataError

DAY_SECONDS = 86400.0
HYPNOGRAM_SUFFIXES = (".txt", ".csv", ".tsv", ".hyp", ".edf")
ACTIGRAPHY_SUFFIXES = (".awd", ".csv", ".tsv")


def _files(rest: str, prefix: str, suffixes: Sequence[str]) -> list[pathlib.Path]:
  """The files of PREFIX:REST: a file, a folder's readable files, or a
  comma-separated list."""
  parts = [p.strip() for p in rest.split(",") if p.strip()]
  if not parts:
    raise DataError(f"{prefix}: names no file; pass --data {prefix}:FILE, "
                    f"{prefix}:FOLDER or {prefix}:FILE1,FILE2")
  paths = [pathlib.Path(p).expanduser() for p in parts]
  if len(paths) == 1 and paths[0].is_dir():
    found = sorted(p for p in paths[0].iterdir() if p.is_file()
                   and p.suffix.lower() in suffixes)
    if not found:
      raise DataError(f"{paths[0]}: no {' / '.join(suffixes)} file in this "
                      f"folder; --data {prefix}:FOLDER reads every such file")
    return found
  for p in paths:
    if not p.is_file():
      raise DataError(f"{p}: no such file; --data {prefix}:PATH takes a "
                      f"file, a folder or comma-separated files")
  return paths


def _check_distinct(recs) -> None:
  """Refuses one recording read twice (e.g. a file and its masked copy):
  its windows could land in train and test. Two recordings are the same
  when they start together and agree on over 90 % of the epochs where
  either is active (shared zeros, e.g. both unworn, prove nothing)."""
  for i in range(len(recs)):
    for j in range(i):
      a, b = recs[i], recs[j]
      if a.start != b.start or a.epoch_seconds != b.epoch_seconds:
        continue
      n = min(a.counts.size, b.counts.size)
      ca, cb = a.counts[:n], b.counts[:n]
      active = np.isfinite(ca) & np.isfinite(cb) & ((ca > 0) | (cb > 0))
      if active.sum() >= 10 and np.mean(ca[active] == cb[active]) > 0.9:
        raise DataError(
            f"{a.source} and {b.source} hold the same recording (same start "
            f"{a.start}, same counts); a subject must be one record, or its "
            "windows could be in train and test: keep one of the files "
            "(--data actigraphy:FILE1,FILE2,...)")


def _unique_names(paths: Sequence[pathlib.Path]) -> list[str]:
  """Record names: the file stems, or the full paths when stems collide."""
  names = [p.stem for p in paths]
  if len(set(n.lower() for n in names)) != len(names):
    return [str(p) for p in paths]
  return names


# ---------------------------------------------------------------------------
# Windows and splits over per-record value arrays.
# ---------------------------------------------------------------------------


def _pieces(names: Sequence[str], lengths: Sequence[int], opts,
            source: str) -> tuple[dict[str, list], str]:
  """({split: [(record, start, end)]}, rule) as data/series.py splits."""
  if len(names) == 1:
    blocks = series.time_blocks(lengths[0], opts.val_fraction,
                                opts.test_fraction)
    rule = (f"one record cut into contiguous time blocks: train the first "
            f"{1 - opts.val_fraction - opts.test_fraction:.0%}, then val "
            f"{opts.val_fraction:.0%}, then test {opts.test_fraction:.0%}; no "
            "window crosses a block")
    return {s: [(0, a, b)] for s, (a, b) in blocks.items() if b > a}, rule
  parts = series.named_record_splits(names, opts.test_records,
                                     opts.val_fraction, opts.test_fraction,
                                     opts.seed, source)
  listed = "; ".join(f"{s}: {', '.join(names[i] for i in v)}"
                     for s, v in parts.items() if v)
  rule = f"whole records per split ({listed}); no record is in two splits"
  return {s: [(i, 0, lengths[i]) for i in v]
          for s, v in parts.items() if v}, rule


def windows_of(values: Sequence[np.ndarray], starts_s: Sequence[float],
               epoch: float, names: Sequence[str], opts, source: str,
               first_start: Callable[[float, int], int]) -> tuple[dict, str]:
  """Cuts every split's windows.

  Args:
    values: per record float64 [T] (NaN where masked).
    starts_s: per record, the first epoch's time in seconds (clock or
      elapsed), from which each window's t0 is computed.
    epoch: seconds per epoch.
    names: record names.
    opts: SeriesOptions (window, stride, fractions, min_valid, max_windows).
    source: for messages.
    first_start: (piece start time in seconds, stride) -> the first window
      start in steps relative to the piece (<= 0; padding before it).

  Returns:
    ({split: (x float32 [n, W, 1], mask bool [n, W], t0 float64 [n])}, rule)
  """
  window, stride = int(opts.window), int(opts.stride or opts.window)
  pieces, rule = _pieces(names, [v.size for v in values], opts, source)
  out = {}
  for split, parts in pieces.items():
    xs, ms, ts = [], [], []
    for r, a, b in parts:
      v = values[r][a:b]
      valid = np.isfinite(v)
      t_piece = starts_s[r] + a * epoch
      off = first_start(t_piece, stride)
      starts = series.window_starts(b - a - off, window, stride) + off
      keep = series.valid_fraction(valid, starts, window) >= opts.min_valid
      starts = starts[keep]
      x, m = series.cut_windows(v[:, None], valid, starts, window)
      xs.append(np.where(m[..., None], x, 0.0))
      ms.append(m)
      ts.append(t_piece + starts.astype(np.float64) * epoch)
    x = np.concatenate(xs).astype(np.float32)
    if x.shape[0]:
      out[split] = (x, np.concatenate(ms), np.concatenate(ts))
  if "train" not in out:
    raise DataError(
        f"{source}: the train split has no window of {window} epochs with at "
        f"least {opts.min_valid:.0%} scored/worn epochs; use a smaller "
        "--window, a lower --min-valid or more records")
  if opts.max_windows and out["train"][0].shape[0] > opts.max_windows:
    n = out["train"][0].shape[0]
    idx = np.round(np.linspace(0, n - 1, opts.max_windows)).astype(np.int64)
    out["train"] = tuple(a[idx] for a in out["train"])
  return out, rule


def _dataset(name: str, source: str, arrays: dict, rule: str,
             metadata: dict[str, Any]) -> Dataset:
  splits = {s: Split({"x": x, "mask": m, "t0": np.asarray(t, np.float32)})
            for s, (x, m, t) in arrays.items()}
  metadata = dict(metadata, normalization={"kind": "none", "offset": [0.0],
                                           "scale": [1.0]},
                  split_rule=rule, segment="window", derive="")
  return Dataset(name=name, splits=splits, source=source, modality="series",
                 metadata=metadata)


# ---------------------------------------------------------------------------
# Hypnograms.
# ---------------------------------------------------------------------------


@PREFIXES.register("hypnogram")
def load_hypnograms(rest: str, data_config) -> Dataset:
  """`--data hypnogram:PATH`: nights of sleep stages (categorical values,
  elapsed time since lights-off as the time input)."""
  from medgen_jax.data.hypnogram_files import read_hypnogram
  name = f"hypnogram:{rest}"
  opts = series.read_options(data_config, name)
  epoch = float(opts.epoch_seconds or EPOCH_SECONDS)
  paths = _files(rest, "hypnogram", HYPNOGRAM_SUFFIXES)
  nights = [read_hypnogram(p, epoch_seconds=epoch) for p in paths]
  epochs = {float(h.epoch_seconds) for h in nights}
  if len(epochs) > 1:
    raise DataError(f"{name}: the hypnograms have different epochs "
                    f"({', '.join(f'{e:g} s' for e in sorted(epochs))}); "
                    "model one epoch length at a time")
  epoch = epochs.pop()
  values = [np.where(h.stages >= 0, h.stages, np.nan).astype(np.float64)
            for h in nights]
  names = _unique_names(paths)
  arrays, rule = windows_of(values, [0.0] * len(values), epoch, names, opts,
                            name, lambda t, stride: 0)
  md = {"channels": ("stage",), "units": ("",), "rate": 1.0 / epoch,
        "window": int(opts.window), "stride": int(opts.stride or opts.window),
        "records": tuple(names), "values": "categorical",
        "category_names": STAGE_NAMES, "time_kind": "elapsed",
        "domain": "hypnogram"}
  return _dataset(names[0] if len(names) == 1 else name, name, arrays, rule,
                  md)


# ---------------------------------------------------------------------------
# Actigraphy.
# ---------------------------------------------------------------------------


def aggregate_counts(counts: np.ndarray, factor: int) -> np.ndarray:
  """Sums counts [T] over `factor` consecutive epochs (a partial last group
  is dropped); a group with any missing epoch is missing."""
  n = counts.size // factor
  return counts[:n * factor].reshape(n, factor).sum(axis=1)


def _midnight_aligned(t_seconds: float, stride: int, epoch: float) -> int:
  """The first window start (steps, <= 0) at a clock multiple of the stride."""
  period = stride * epoch
  behind = float(np.mod(np.mod(t_seconds, DAY_SECONDS), period))
  return -(int(round(behind / epoch)) % stride)


@PREFIXES.register("actigraphy")
def load_actigraphy(rest: str, data_config) -> Dataset:
  """`--data actigraphy:PATH`: activity counts per epoch (count values,
  time of day as the time input); non-wear masked."""
  from medgen_jax.data import actigraphy_files as af
  name = f"actigraphy:{rest}"
  opts = series.read_options(data_config, name)
  paths = [p for p in _files(rest, "actigraphy", ACTIGRAPHY_SUFFIXES)
           if not af.is_sleep_diary(p)]
  if not paths:
    raise DataError(f"{name}: only sleep diaries, no recording; pass the "
                    "recordings (.awd, .csv of timestamp and counts)")
  recs = [af.read_actigraphy(p) for p in paths]
  _check_distinct(recs)
  diary = af.read_sleep_diary(opts.diary) if opts.diary else ()
  if diary and len(recs) != 1:
    raise ConfigError(f"--diary {opts.diary}: a sleep diary describes one "
                      f"recording, but {name} has {len(recs)}; pass one file")
  native = {float(r.epoch_seconds) for r in recs}
  target = float(opts.epoch_seconds) or max(native)
  values, starts = [], []
  for r in recs:
    counts = np.asarray(r.counts, np.float64)
    worn = af.worn_epochs(r, opts.nonwear_minutes, diary)
    counts = np.where(worn, counts, np.nan)
    factor = target / r.epoch_seconds
    if abs(factor - round(factor)) > 1e-9 or round(factor) < 1:
      raise ConfigError(
          f"--epoch-seconds {target:g}: {r.source} has {r.epoch_seconds:g}-s "
          "epochs; choose a whole multiple of every file's epoch")
    # Groups start at clock multiples of the target epoch (13:55, not 13:58,
    # for 300-s groups), so day windows start at midnight in every record:
    # the native epochs before the record's start are missing (padding).
    factor, clock = int(round(factor)), af.clock_seconds(r.start)
    lead = int(round(np.mod(clock, target) / r.epoch_seconds)) % factor
    counts = np.concatenate([np.full(lead, np.nan), counts])
    values.append(aggregate_counts(counts, factor))
    starts.append(clock - lead * r.epoch_seconds)
  names = _unique_names(paths)
  arrays, rule = windows_of(
      values, starts, target, names, opts, name,
      lambda t, stride: _midnight_aligned(t, stride, target))
  for s, (x, m, t0) in arrays.items():
    t0 = np.mod(np.round(t0.astype(np.float64), 3), DAY_SECONDS)
    arrays[s] = (x, m, t0.astype(np.float32))
  md = {"channels": ("activity",), "units": ("counts",), "rate": 1.0 / target,
        "window": int(opts.window), "stride": int(opts.stride or opts.window),
        "records": tuple(names), "values": "counts", "time_kind": "clock",
        "domain": "actigraphy"}
  return _dataset(names[0] if len(names) == 1 else name, name, arrays, rule,
                  md)
