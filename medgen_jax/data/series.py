"""Training examples from physiological recordings (pure numpy).

    ds = series_dataset([read_wfdb("100")], config.data, "100", "100.hea")
    ds.split("train")["x"]      # float32 [n, window, channels], normalised
    ds.split("train")["mask"]   # bool [n, window], True = a real step

A "series" Dataset holds "x" float32 [n, T, C] (normalised; masked steps
hold exactly 0.0), "mask" bool [n, T] (a step where any channel is NaN, or
padding, is False) and, for beat segments, "label" int32 [n]. Its metadata
carries channels, units, rate (Hz, after resampling), normalization
({"kind", "offset", "scale"}: x_norm = (x - offset) / scale), window,
stride, records, split_rule and, for beats, num_classes and class_names.

The steps, in order (options of configs/series.py):

  1. per record: --channels; then --derive (a per-beat series on a regular
     grid) or --resample (polyphase, gaps kept masked);
  2. splits: ONE record is cut into contiguous time blocks (train, then val,
     then test); SEVERAL records go whole to one split each (shuffled with
     data.seed, at least one in train; two records: train and test). An
     example never crosses a block, so no sample is in two splits;
  3. examples: windows of --window steps every --stride steps (a last
     partial window is padded and masked), or with --segment beat one
     segment per annotated beat from --beat-before to --beat-after seconds
     around it (the part outside the record or block is padded and
     masked); examples with fewer than --min-valid real steps are dropped,
     and --max-windows caps the train split (evenly spaced);
  4. normalisation per channel with the TRAIN split's unmasked steps only.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import re
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from medgen_jax.configs.series import (DERIVE_RATE,
                                       validate_series_data_options)
from medgen_jax.data.base import MODALITIES, Dataset, Split
from medgen_jax.data.registry import (format_bytes, memory_limit_bytes,
                                      option)
from medgen_jax.data.series_covariates import (read_record_covariates,
                                               standardise)
from medgen_jax.data.signals import Recording, annotation_files, select_channels
from medgen_jax.errors import ConfigError, DataError

logger = logging.getLogger("medgen_jax")

RR_RANGE = (0.2, 3.0)  # seconds; heart-rate intervals outside are masked
_PRESSURE_NAMES = frozenset(("ABP", "ART", "BP"))
_MAX_RATIO_TERM = 2000  # largest up/down factor of the polyphase resampler
_FIELDS = ("kind", "channels", "rate", "time_column", "resample", "window",
           "stride", "segment", "beat_before", "beat_after", "annotation",
           "derive", "normalize", "val_fraction", "test_fraction",
           "min_valid", "max_windows", "covariates", "test_records",
           "epoch_seconds", "nonwear_minutes", "diary", "sines_examples",
           "sines_channels", "seed")


@dataclasses.dataclass(frozen=True)
class SeriesOptions:
  """The series fields of a `data` section (configs/series.py)."""

  channels: str
  rate: float
  time_column: str
  resample: float
  window: int
  stride: int
  segment: str
  beat_before: float
  beat_after: float
  annotation: str
  derive: str
  normalize: str
  val_fraction: float
  test_fraction: float
  min_valid: float
  max_windows: int
  covariates: str
  test_records: str
  epoch_seconds: float
  nonwear_minutes: float
  diary: str
  seed: int


def read_options(data_config, dataset: str) -> SeriesOptions:
  """The series options of `data_config`, checked; ConfigError when the
  config lacks them (a family without series fields) or one is invalid."""
  for field in _FIELDS:
    option(data_config, field, dataset, kind="a series dataset",
           family="a series family such as `medgen train rnn`")
  validate_series_data_options(data_config)
  return SeriesOptions(**{f.name: data_config[f.name]
                          for f in dataclasses.fields(SeriesOptions)})


# ---------------------------------------------------------------------------
# Resampling.
# ---------------------------------------------------------------------------


def _ratio(rate: float, new_rate: float) -> tuple[int, int]:
  """(up, down) with new_rate / rate ~= up / down (exact for rates such as
  360 -> 125; within 1e-3 relative otherwise)."""
  exact = (Fraction(new_rate).limit_denominator(10**6)
           / Fraction(rate).limit_denominator(10**6))
  if max(exact.numerator, exact.denominator) > _MAX_RATIO_TERM:
    exact = exact.limit_denominator(1000)
  return max(exact.numerator, 1), max(exact.denominator, 1)


def _fill(col: np.ndarray) -> np.ndarray:
  """col [T] with NaN gaps linearly interpolated (0 if all NaN)."""
  ok = np.isfinite(col)
  if ok.all():
    return col
  if not ok.any():
    return np.zeros_like(col)
  return np.interp(np.arange(col.size), np.flatnonzero(ok), col[ok])


def resample_signals(x: np.ndarray, rate: float,
                     new_rate: float) -> np.ndarray:
  """Resamples x [T, C] (NaN at gaps) from `rate` to `new_rate` Hz.

  Polyphase filtering (scipy.signal.resample_poly, anti-aliased) of each
  channel with its gaps linearly filled; then an output step is NaN when
  an input gap lies within half an output period (at least one input step)
  of its time.

  Returns:
    float64 [ceil(T * up / down), C], NaN at gaps.
  """
  try:
    from scipy import signal  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError("--resample needs scipy; install it with pip install "
                      "'medgen_jax[series]'") from None
  up, down = _ratio(rate, new_rate)
  if up == down:
    return x.copy()
  length = x.shape[0]
  filled = np.stack([_fill(x[:, c]) for c in range(x.shape[1])], axis=1)
  out = signal.resample_poly(filled, up, down, axis=0, padtype="line")
  at = np.clip(np.round(np.arange(out.shape[0]) * down / up).astype(np.int64),
               0, length - 1)  # the input step nearest each output step
  radius = max(1, math.ceil(down / up / 2))
  kernel = np.ones(2 * radius + 1)
  for c in range(x.shape[1]):
    gap = ~np.isfinite(x[:, c])
    if gap.any():
      near = np.convolve(gap.astype(np.float64), kernel, mode="same") > 0
      out[near[at], c] = np.nan
  return out


def resample_recording(rec: Recording, new_rate: float) -> Recording:
  """`rec` at `new_rate` Hz; beats move to the nearest new sample."""
  if new_rate == rec.rate:
    return rec
  x = resample_signals(rec.signals, rec.rate, new_rate)
  beats = rec.beats
  if beats is not None:
    beats = np.clip(np.round(beats * (new_rate / rec.rate)).astype(np.int64),
                    0, x.shape[0] - 1)
  return dataclasses.replace(rec, signals=x, rate=float(new_rate),
                             beats=beats)


# ---------------------------------------------------------------------------
# Derived per-beat series.
# ---------------------------------------------------------------------------


def _need_beats(rec: Recording, what: str, minimum: int = 2) -> np.ndarray:
  """The beats of `rec` (at least `minimum`), or a DataError saying how to
  give them."""
  if rec.beats is None:
    if rec.source.lower().endswith(".hea"):
      found = annotation_files(rec.source)
      fix = (f"pass --annotation EXT with one of the annotation files beside "
             f"it: {', '.join(found)}" if found else
             "no annotation file is beside it: add one (e.g. from a QRS "
             "detector such as wfdb.processing.xqrs_detect) or use "
             "--segment window without --derive")
    else:
      fix = ("this file carries no beat annotations: use a WFDB record "
             "with an annotation file, or --segment window without --derive")
    raise DataError(f"{rec.source or rec.name}: record {rec.name} has no beat "
                    f"annotations, which {what} needs; {fix}")
  if rec.beats.size < minimum:
    raise DataError(
        f"{rec.source or rec.name}: record {rec.name} has {rec.beats.size} "
        f"annotated beat(s); {what} needs at least {minimum} (WFDB beat "
        "symbols N, V, A ...): choose another annotation file with "
        "--annotation EXT")
  return rec.beats


def _on_grid(rec: Recording, values: np.ndarray, rate: float) -> np.ndarray:
  """Per-interval values [k - 1, V] (interval i = beats i..i+1, NaN =
  masked) -> a grid [steps, V] at `rate` Hz over the record: a grid time in
  (t_i, t_i+1] takes interval i's value; times outside every interval NaN."""
  t = rec.beats / rec.rate  # [k] seconds
  steps = int(math.floor(rec.length / rec.rate * rate + 1e-9))
  grid = np.arange(steps) / rate
  k = np.searchsorted(t, grid, side="left")  # first beat at or after
  inside = (k >= 1) & (k < t.size)
  out = np.full((steps, values.shape[1]), np.nan)
  out[inside] = values[k[inside] - 1]
  return out


def heart_rate(rec: Recording, rate: float = DERIVE_RATE) -> Recording:
  """Instantaneous heart rate 60 / RR (bpm) of `rec`'s beats on a grid of
  `rate` Hz; intervals outside RR_RANGE seconds are masked."""
  beats = _need_beats(rec, "--derive heart_rate")
  rr = np.diff(beats) / rec.rate  # [k - 1] seconds
  ok = (rr >= RR_RANGE[0]) & (rr <= RR_RANGE[1])
  hr = np.where(ok, 60.0 / np.where(rr > 0, rr, 1.0), np.nan)
  return Recording(name=rec.name, signals=_on_grid(rec, hr[:, None], rate),
                   channels=("heart_rate",), units=("bpm",), rate=rate,
                   source=rec.source)


def pressure_channel(rec: Recording) -> int:
  """The arterial-pressure channel: named ABP, ART or BP (a word of the
  name), else the only channel in mmHg; DataError when none or several."""
  words = [set(re.split(r"[^A-Z]+", c.upper())) for c in rec.channels]
  named = [i for i, w in enumerate(words) if w & _PRESSURE_NAMES]
  mmhg = [i for i, u in enumerate(rec.units) if u.strip().lower() == "mmhg"]
  found = named or mmhg
  if len(found) == 1:
    return found[0]
  listed = ", ".join(f"{c} ({u or 'no unit'})"
                     for c, u in zip(rec.channels, rec.units))
  if not found:
    raise DataError(
        f"{rec.source or rec.name}: --derive pressure needs an arterial "
        "pressure channel (named ABP, ART or BP, or in mmHg); the record's "
        f"channels are: {listed}")
  raise DataError(
      f"{rec.source or rec.name}: --derive pressure found several pressure "
      f"channels ({', '.join(rec.channels[i] for i in found)}); choose one "
      "with --channels NAME")


def pressure(rec: Recording, rate: float = DERIVE_RATE) -> Recording:
  """Systolic (max) and diastolic (min) arterial pressure between
  consecutive beats, on a grid of `rate` Hz; an interval with a gap or an
  RR outside RR_RANGE is masked."""
  beats = _need_beats(rec, "--derive pressure")
  c = pressure_channel(rec)
  p = rec.signals[:, c]
  systolic = np.maximum.reduceat(p, beats)[:-1]  # NaN in an interval: NaN
  diastolic = np.minimum.reduceat(p, beats)[:-1]
  rr = np.diff(beats) / rec.rate
  ok = (rr >= RR_RANGE[0]) & (rr <= RR_RANGE[1])
  values = np.where(ok[:, None], np.stack([systolic, diastolic], 1), np.nan)
  unit = rec.units[c]
  return Recording(name=rec.name, signals=_on_grid(rec, values, rate),
                   channels=("systolic", "diastolic"), units=(unit, unit),
                   rate=rate, source=rec.source)


DERIVERS = {"heart_rate": heart_rate, "pressure": pressure}


# ---------------------------------------------------------------------------
# Examples: windows and beat segments.
# ---------------------------------------------------------------------------


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
  """Start steps of windows over `length` steps: 0, stride, ..., up to the
  first window that reaches the end (it may be partial). int64 [n]."""
  if length <= 0:
    return np.zeros((0,), np.int64)
  last = max(0, length - window)  # the first start whose window reaches the end
  n = -(-last // stride) + 1
  starts = np.arange(n, dtype=np.int64) * stride
  return starts[starts < length]


def valid_fraction(valid: np.ndarray, starts: np.ndarray,
                   window: int) -> np.ndarray:
  """Fraction of real steps of each window; outside [0, T) counts as
  masked. valid bool [T], starts int [n] (may be negative) -> float [n]."""
  cs = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
  lo = np.clip(starts, 0, valid.size)
  hi = np.clip(starts + window, 0, valid.size)
  return (cs[hi] - cs[lo]) / float(window)


def cut_windows(x: np.ndarray, valid: np.ndarray, starts: np.ndarray,
                window: int) -> tuple[np.ndarray, np.ndarray]:
  """Windows of x [T, C] at `starts` [n]; steps outside [0, T) are padded
  (NaN) and masked. Returns (float64 [n, window, C], bool [n, window])."""
  idx = starts[:, None] + np.arange(window)[None, :]  # [n, window]
  inside = (idx >= 0) & (idx < x.shape[0])
  safe = np.clip(idx, 0, max(x.shape[0] - 1, 0))
  xw = np.where(inside[..., None], x[safe], np.nan)
  return xw, inside & valid[safe]


def _beat_window(rate: float, opts: SeriesOptions) -> tuple[int, int]:
  """(segment steps, index of the beat in it) of --segment beat."""
  window = int(round((opts.beat_before + opts.beat_after) * rate))
  if window < 2:
    raise ConfigError(
        f"--beat-before {opts.beat_before:g} + --beat-after "
        f"{opts.beat_after:g} s at {rate:g} Hz make beat segments of {window} "
        "step(s); widen them or raise --resample")
  return window, int(round(opts.beat_before * rate))


# ---------------------------------------------------------------------------
# Splits.
# ---------------------------------------------------------------------------


def time_blocks(length: int, val_fraction: float,
                test_fraction: float) -> dict[str, tuple[int, int]]:
  """{split: (start, end)}: train first, then val, then test."""
  n_val = int(round(val_fraction * length))
  n_test = int(round(test_fraction * length))
  n_train = length - n_val - n_test
  return {"train": (0, n_train), "val": (n_train, n_train + n_val),
          "test": (n_train + n_val, length)}


def record_splits(count: int, val_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, list[int]]:
  """{split: record indices}: whole records, shuffled with `seed`; at least
  one record in train, and in val / test when its fraction is > 0 and
  records remain (two records: train and test)."""
  n_test = max(int(test_fraction > 0), int(round(test_fraction * count)))
  n_val = max(int(val_fraction > 0), int(round(val_fraction * count)))
  while count - n_val - n_test < 1 and n_val:
    n_val -= 1
  while count - n_val - n_test < 1 and n_test:
    n_test -= 1
  order = [int(i) for i in np.random.default_rng(seed).permutation(count)]
  n_train = count - n_val - n_test
  return {"train": sorted(order[:n_train]),
          "val": sorted(order[n_train:n_train + n_val]),
          "test": sorted(order[n_train + n_val:])}


def named_record_splits(names: Sequence[str], test_records: str,
                        val_fraction: float, test_fraction: float,
                        seed: int, source: str) -> dict[str, list[int]]:
  """record_splits, or with `test_records` (comma-separated names, any
  case) those records as test and val drawn from the rest."""
  if not test_records:
    return record_splits(len(names), val_fraction, test_fraction, seed)
  wanted = [t.strip() for t in test_records.split(",") if t.strip()]
  lower = [n.lower() for n in names]
  missing = [t for t in wanted if t.lower() not in lower]
  if missing:
    raise ConfigError(f"--test-records {missing[0]!r}: no such record in "
                      f"{source} (its records: {', '.join(names)})")
  test = sorted({lower.index(t.lower()) for t in wanted})
  rest = [i for i in range(len(names)) if i not in test]
  if not rest:
    raise ConfigError(f"--test-records {test_records!r} holds out every "
                      f"record of {source}; leave at least one to train on")
  inner = record_splits(len(rest), val_fraction, 0.0, seed)
  return {"train": [rest[i] for i in inner["train"]],
          "val": [rest[i] for i in inner["val"]], "test": test}


# ---------------------------------------------------------------------------
# Normalisation.
# ---------------------------------------------------------------------------


def fit_normalization(x: np.ndarray, mask: np.ndarray,
                      kind: str) -> dict[str, Any]:
  """Per-channel statistics of x [n, T, C] over its unmasked steps.

  Args:
    x: values in the record's units.
    mask: bool [n, T], True = a real step.
    kind: "zscore" (offset mean, scale std), "minmax" (offset min, scale
      max - min: values in [0, 1]) or "none" (0, 1). A constant channel
      gets scale 1.

  Returns:
    {"kind", "offset": list[float] [C], "scale": list[float] [C]}.
  """
  channels = x.shape[-1]
  if kind == "none":
    offset, scale = np.zeros(channels), np.ones(channels)
  else:
    v = x[mask]  # [m, C]
    if kind == "zscore":
      offset, scale = v.mean(axis=0), v.std(axis=0)
    elif kind == "minmax":
      offset, scale = v.min(axis=0), v.max(axis=0) - v.min(axis=0)
    else:
      raise ValueError(f"unknown normalisation {kind!r}")
    tiny = 1e-12 * np.maximum(1.0, np.abs(offset))
    scale = np.where(scale > tiny, scale, 1.0)
  return {"kind": kind, "offset": [float(v) for v in offset],
          "scale": [float(v) for v in scale]}


def normalize(x: np.ndarray, mask: np.ndarray,
              norm: dict[str, Any]) -> np.ndarray:
  """float32 (x - offset) / scale, exactly 0.0 at masked steps."""
  offset = np.asarray(norm["offset"], np.float64)
  scale = np.asarray(norm["scale"], np.float64)
  out = np.where(mask[..., None], (x - offset) / scale, 0.0)
  return out.astype(np.float32)


def denormalize(x: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
  """Normalised values [..., C] back in the record's units."""
  return (np.asarray(x, np.float64) * np.asarray(norm["scale"], np.float64)
          + np.asarray(norm["offset"], np.float64))


# ---------------------------------------------------------------------------
# The dataset.
# ---------------------------------------------------------------------------


def _prepare(rec: Recording, opts: SeriesOptions) -> Recording:
  """--derive or --resample (after --channels)."""
  if opts.derive:
    return DERIVERS[opts.derive](rec, opts.resample or DERIVE_RATE)
  if opts.segment == "beat":
    _need_beats(rec, "--segment beat", minimum=1)
  if opts.resample:
    return resample_recording(rec, opts.resample)
  return rec


def _check_channels(recs: Sequence[Recording]) -> None:
  """The same channel names and units (any case) in every record."""
  first = recs[0]
  for r in recs[1:]:
    if [c.lower() for c in r.channels] != [c.lower() for c in first.channels]:
      common = [c for c in first.channels if all(
          c.lower() in [d.lower() for d in o.channels] for o in recs)]
      hint = (f"keep common ones with --channels {','.join(common)}"
              if common else "no channel is in every record: list "
              "compatible ones with --data wfdb:REC1,REC2")
      raise DataError(
          f"{r.source or r.name}: channels {', '.join(r.channels)} differ "
          f"from {first.name}'s ({', '.join(first.channels)}); every record "
          f"needs the same channels: {hint}")
    if [u.lower() for u in r.units] != [u.lower() for u in first.units]:
      raise DataError(
          f"{r.source or r.name}: units {', '.join(r.units)} differ from "
          f"{first.name}'s ({', '.join(first.units)}); convert the records "
          "to the same units")


def _check_rate(recs: Sequence[Recording]) -> float:
  """The one rate of all records; ConfigError asking for --resample."""
  rates = sorted({r.rate for r in recs})
  if rates[-1] - rates[0] > 1e-9 * rates[-1]:
    listed = ", ".join(f"{r.name}: {r.rate:g} Hz" for r in recs[:6])
    raise ConfigError(f"the records have different sampling rates ({listed}"
                      f"{' ...' if len(recs) > 6 else ''}); pass --resample "
                      "HZ to bring them to one rate")
  return recs[0].rate


def _check_values(recs: Sequence[Recording]) -> None:
  """Every channel of every record has at least one value."""
  for r in recs:
    empty = ~np.isfinite(r.signals).any(axis=0)
    if empty.any():
      c = r.channels[int(np.argmax(empty))]
      raise DataError(f"{r.source or r.name}: channel {c!r} has no value; "
                      "leave it out with --channels (the record's channels "
                      f"are: {', '.join(r.channels)})")


def _pieces(recs: Sequence[Recording],
            opts: SeriesOptions) -> tuple[dict[str, list], str]:
  """({split: [(record index, start, end)]}, the split rule)."""
  if len(recs) == 1:
    blocks = time_blocks(recs[0].length, opts.val_fraction,
                         opts.test_fraction)
    rule = (f"one record cut into contiguous time blocks: train the first "
            f"{1 - opts.val_fraction - opts.test_fraction:.0%} of the time, "
            f"then val {opts.val_fraction:.0%}, then test "
            f"{opts.test_fraction:.0%}; no example crosses a block")
    return {s: [(0, a, b)] for s, (a, b) in blocks.items() if b > a}, rule
  parts = named_record_splits([r.name for r in recs], opts.test_records,
                              opts.val_fraction, opts.test_fraction,
                              opts.seed, "the data")
  counts = ", ".join(f"{len(v)} {s}" for s, v in parts.items() if v)
  rule = (f"whole records per split ({counts} of {len(recs)}), shuffled "
          f"with data.seed {opts.seed}; no record is in two splits")
  return {s: [(i, 0, recs[i].length) for i in v]
          for s, v in parts.items() if v}, rule


@dataclasses.dataclass(frozen=True)
class _Examples:
  """One split's examples, before their values are gathered.

  Attributes:
    pieces: [(record index, start, end)] of the split's record parts.
    piece: int64 [n] index into `pieces` per example.
    start: int64 [n] first step per example, relative to its piece (< 0 when
      a beat segment starts before it).
    symbol: object [n] beat symbol per example ("" for windows).
  """

  pieces: list
  piece: np.ndarray
  start: np.ndarray
  symbol: np.ndarray

  def __len__(self) -> int:
    return int(self.piece.size)

  def take(self, idx: np.ndarray) -> "_Examples":
    return _Examples(self.pieces, self.piece[idx], self.start[idx],
                     self.symbol[idx])


def _candidates(recs, pieces, opts, window) -> _Examples:
  """The examples of one split's pieces with at least min_valid real steps."""
  piece, start, symbol = [], [], []
  for p, (r, a, b) in enumerate(pieces):
    rec = recs[r]
    valid = np.isfinite(rec.signals[a:b]).all(axis=1)
    if opts.segment == "beat":
      _, before = _beat_window(rec.rate, opts)
      inside = (rec.beats >= a) & (rec.beats < b)
      starts = rec.beats[inside] - a - before
      symbols = np.asarray(rec.beat_symbols, object)[inside]
    else:
      starts = window_starts(b - a, window, opts.stride or window)
      symbols = np.full(starts.size, "", object)
    keep = valid_fraction(valid, starts, window) >= opts.min_valid
    piece.append(np.full(int(keep.sum()), p, np.int64))
    start.append(starts[keep])
    symbol.append(symbols[keep])
  return _Examples(list(pieces), np.concatenate(piece or [[]]).astype(
      np.int64), np.concatenate(start or [[]]).astype(np.int64),
                   np.concatenate(symbol or [np.zeros(0, object)]))


def _cap(ex: _Examples, limit: int) -> _Examples:
  """At most `limit` examples, evenly spaced (0 = all)."""
  if not limit or len(ex) <= limit:
    return ex
  return ex.take(np.round(np.linspace(0, len(ex) - 1, limit)).astype(
      np.int64))


def _gather(recs, ex: _Examples, window: int):
  """The values of `ex`: float64 [n, window, C] (NaN outside its piece) and
  bool [n, window], one record piece at a time."""
  channels = recs[0].signals.shape[1]
  x = np.empty((len(ex), window, channels))
  m = np.empty((len(ex), window), bool)
  for p in np.unique(ex.piece):
    r, a, b = ex.pieces[p]
    ks = np.flatnonzero(ex.piece == p)
    sig = recs[r].signals[a:b]
    x[ks], m[ks] = cut_windows(sig, np.isfinite(sig).all(axis=1),
                               ex.start[ks], window)
  return x, m


def _check_memory(n: int, window: int, channels: int, source: str) -> None:
  need = n * window * (channels * 12 + 1)  # float64 build + float32 result
  limit = memory_limit_bytes()
  if limit is not None and need > limit:
    raise DataError(
        f"{source}: {n} examples of {window} steps x {channels} channels take "
        f"about {format_bytes(need)}, more than the {format_bytes(limit)} "
        "this machine allows for one dataset; raise --stride or cap the "
        "examples with --max-windows N")


def series_dataset(recordings: Sequence[Recording], data_config, name: str,
                   source: str) -> Dataset:
  """A "series" Dataset from recordings (see the module docstring).

  Args:
    recordings: one or more records (same channels after --channels).
    data_config: the `data` section with the fields of configs/series.py.
    name: the dataset's name.
    source: where the data came from, for messages.

  Returns:
    The Dataset: splits "train" and, when the data allow, "val" / "test".
  """
  opts = read_options(data_config, name)
  if not recordings:
    raise DataError(f"{source}: no record to read")
  recs = [select_channels(r, opts.channels) for r in recordings]
  if not opts.derive:
    _check_channels(recs)
    if not opts.resample:
      _check_rate(recs)
  recs = [_prepare(r, opts) for r in recs]
  _check_channels(recs)
  rate = _check_rate(recs)
  _check_values(recs)
  beats = opts.segment == "beat"
  window = _beat_window(rate, opts)[0] if beats else opts.window
  pieces, rule = _pieces(recs, opts)
  items = {s: _candidates(recs, p, opts, window) for s, p in pieces.items()}
  if not len(items.get("train", ())):
    what = ("beat with its segment" if beats else f"window of {window} steps")
    raise DataError(
        f"{source}: the train split has no {what} with at least "
        f"{opts.min_valid:.0%} real steps ({sum(r.length for r in recs)} "
        f"steps at {rate:g} Hz in all); use a smaller --window, a lower "
        "--min-valid, or a longer record")
  items["train"] = _cap(items["train"], opts.max_windows)
  metadata: dict[str, Any] = {}
  if beats:
    counts = collections.Counter(items["train"].symbol.tolist())
    names = sorted(counts, key=lambda k: (-counts[k], k))
    index = {k: i for i, k in enumerate(names)}
    for s in ("val", "test"):
      if s not in items:
        continue
      seen = np.asarray([k in index for k in items[s].symbol.tolist()], bool)
      if not seen.all():
        logger.warning("%s: %d %s beat(s) of types absent from train (%s) "
                       "dropped", source, int((~seen).sum()), s,
                       ", ".join(sorted(set(items[s].symbol[~seen]))))
        items[s] = items[s].take(seen)
    metadata.update(num_classes=len(names), class_names=tuple(names))
  items = {s: v for s, v in items.items() if len(v)}
  channels = recs[0].signals.shape[1]
  _check_memory(sum(map(len, items.values())), window, channels, source)
  raw = {s: _gather(recs, v, window) for s, v in items.items()}
  norm = fit_normalization(*raw["train"], opts.normalize)
  covariates = {}
  if opts.covariates:  # each example carries its record's row
    names, values = read_record_covariates(opts.covariates,
                                           [r.name for r in recs])
    covariates, stats = standardise(
        {s: values[[v.pieces[p][0] for p in v.piece]]
         for s, v in items.items()})
    metadata.update(covariate_names=names, covariate_normalization=stats)
  splits = {}
  for s, (x, m) in raw.items():
    arrays = {"x": normalize(x, m, norm), "mask": m}
    if covariates:
      arrays["covariates"] = covariates[s]
    if beats:
      arrays["label"] = np.asarray([index[k] for k in items[s].symbol],
                                   np.int32)
    splits[s] = Split(arrays)
  metadata.update(
      channels=recs[0].channels, units=recs[0].units, rate=float(rate),
      normalization=norm, window=int(window),
      stride=0 if beats else int(opts.stride or window),
      records=tuple(r.name for r in recs), split_rule=rule,
      segment=opts.segment, derive=opts.derive)
  return Dataset(name=name, splits=splits, source=source, modality="series",
                 metadata=metadata)


# ---------------------------------------------------------------------------
# The "series" modality check.
# ---------------------------------------------------------------------------


@MODALITIES.register("series")
def _series_modality(ds: Dataset) -> None:
  """x float [n, T, C]; mask bool [n, T]; masked x is 0.0; label int [n];
  metadata channels (C names) and rate > 0."""
  where = f"{ds.source}: series dataset {ds.name!r}"
  train = ds.split("train")
  missing = [k for k in ("x", "mask") if k not in train]
  if missing:
    raise DataError(f"{where} lacks key(s) {missing} (it has "
                    f"{list(train.keys())}); a series dataset holds 'x' and "
                    "'mask'; build it with series_dataset()")
  channels = None
  for s, split in ds.splits.items():
    x, m = split["x"], split["mask"]
    at = f"{where}, split {s!r}"
    if x.dtype.kind != "f" or x.ndim != 3 or x.shape[2] < 1:
      raise DataError(f"{at}: 'x' has dtype {x.dtype} and shape {x.shape}; "
                      "expected float values [n, time, channels]")
    if m.dtype != np.bool_ or m.shape != x.shape[:2]:
      raise DataError(f"{at}: 'mask' has dtype {m.dtype} and shape {m.shape};"
                      f" expected bool [n, time] = {x.shape[:2]}")
    if np.any(x[~m] != 0):
      raise DataError(f"{at}: 'x' is not 0.0 at masked steps; padding must "
                      "hold 0.0 so it cannot leak into a loss")
    if "label" in split and (split["label"].dtype.kind not in "iu"
                             or split["label"].shape != (x.shape[0],)):
      raise DataError(f"{at}: 'label' has dtype {split['label'].dtype} and "
                      f"shape {split['label'].shape}; expected int [n]")
    channels = x.shape[2]
  md = ds.metadata
  names = md.get("channels")
  if names is None or len(names) != channels:
    raise DataError(f"{where}: metadata channels {names!r} do not name the "
                    f"{channels} channels of 'x'; give one name per channel")
  units = md.get("units")
  if units is not None and len(units) != channels:
    raise DataError(f"{where}: metadata units {units!r} do not match the "
                    f"{channels} channels of 'x'")
  rate = md.get("rate")
  if (isinstance(rate, bool) or not isinstance(rate, (int, float))
      or not math.isfinite(rate) or rate <= 0):
    raise DataError(f"{where}: metadata rate {rate!r}; expected the sampling "
                    "rate in Hz (> 0)")
  norm = md.get("normalization")
  if norm is not None:
    scale = np.asarray(norm.get("scale", []), np.float64)
    offset = np.asarray(norm.get("offset", []), np.float64)
    if (scale.shape != (channels,) or offset.shape != (channels,)
        or not np.isfinite(offset).all() or not (scale > 0).all()
        or not np.isfinite(scale).all()):
      raise DataError(f"{where}: metadata normalization {norm!r}; expected "
                      f"{channels} finite offsets and positive scales")
  if "label" in train and len(ds.class_names) != ds.num_classes:
    raise DataError(f"{where}: {len(ds.class_names)} class names for "
                    f"{ds.num_classes} classes; give one name per class")
