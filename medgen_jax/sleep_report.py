"""`medgen sleep-metrics FILE`: the sleep measures of a real or generated
file, as a table or JSON.

FILE is a hypnogram (text or EDF+, data/hypnogram_files.py), an actigraphy
recording (.awd or a CSV of timestamp and counts, data/actigraphy_files.py),
or the .npz that `medgen sample` writes for a hypnogram or actigraphy run
(x [n, T, 1], mask [n, T], t0 [n]); an .npz needs --kind and, if its epochs
are not the default (30 s for hypnograms, 60 s for actigraphy),
--epoch-seconds.

Hypnograms: the measures of metrics/sleep.py's `hypnogram_statistics`, one
row per night. Actigraphy: mean counts, Cole-Kripke sleep minutes per day
(1-minute epochs), IS, IV, L5, M10 and RA, one row per recording or
generated series, non-wear (zero runs of --nonwear-minutes) excluded. With
--diary FILE (TYPE, START, END), one row per diary NIGHT instead: time in
bed, Cole-Kripke total sleep time, efficiency, onset latency, WASO and
awakenings inside the night (NOWEAR periods masked).
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from medgen_jax.data.sleep_stages import EPOCH_SECONDS
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.metrics import sleep as sleep_metrics

KINDS = ("auto", "hypnogram", "actigraphy")
ACTIGRAPHY_KEYS = ("days", "mean_count", "ck_sleep_minutes_per_day", "IS",
                   "IV", "L5", "M10", "RA")


def _kind_of(path: pathlib.Path, kind: str) -> str:
  if kind != "auto":
    return kind
  suffix = path.suffix.lower()
  if suffix == ".awd":
    return "actigraphy"
  if suffix in (".edf", ".txt", ".hyp"):
    return "hypnogram"
  if suffix == ".csv":   # a stage column or a timestamp + counts table
    from medgen_jax.data.actigraphy_files import is_sleep_diary
    if is_sleep_diary(path):
      raise DataError(f"{path}: a sleep diary (TYPE, START, END), not a "
                      "recording; pass it to training as --diary FILE")
    with open(path, errors="replace") as f:
      head = f.readline().lower()
    return "actigraphy" if any(w in head for w in ("time", "date")) else (
        "hypnogram")
  raise ConfigError(f"{path}: cannot tell a hypnogram from actigraphy by its "
                    "suffix; pass --kind hypnogram or --kind actigraphy")


def _series_from_npz(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray,
                                                   np.ndarray]:
  with np.load(path, allow_pickle=False) as d:
    if "x" not in d:
      raise DataError(f"{path}: no array 'x'; expected the .npz of `medgen "
                      "sample` (x [n, T, 1], mask [n, T], t0 [n])")
    x = np.asarray(d["x"], np.float64)
    if x.ndim == 2:
      x = x[..., None]
    if x.ndim != 3 or x.shape[2] != 1:
      raise DataError(f"{path}: 'x' has shape {x.shape}; expected [n, T, 1] "
                      "(one stage or count per epoch)")
    mask = (np.asarray(d["mask"], bool) if "mask" in d
            else np.isfinite(x[..., 0]))
    t0 = (np.asarray(d["t0"], np.float64) if "t0" in d
          else np.zeros(x.shape[0]))
  return x[..., 0], mask, t0


def hypnogram_rows(path: pathlib.Path, epoch_seconds: float
                   ) -> tuple[list[str], list[dict[str, float]], float]:
  """(row names, measures per night, epoch seconds)."""
  if path.suffix.lower() == ".npz":
    x, mask, _ = _series_from_npz(path)
    epoch = epoch_seconds or EPOCH_SECONDS
    stages = np.where(mask, np.rint(x), -1).astype(np.int64)
    if ((stages < -1) | (stages > 4)).any():
      raise DataError(f"{path}: values outside the stage codes 0..4; is it "
                      "actigraphy? (--kind actigraphy)")
    names = [f"sample {i}" for i in range(len(stages))]
  else:
    from medgen_jax.data.hypnogram_files import read_hypnogram
    h = read_hypnogram(path, epoch_seconds=epoch_seconds or EPOCH_SECONDS)
    epoch, stages, names = h.epoch_seconds, [h.stages], [path.name]
  return names, [sleep_metrics.hypnogram_statistics(s, epoch)
                 for s in stages], epoch


def _actigraphy_measures(counts, mask, epoch, t0) -> dict[str, float]:
  out = {"days": float(mask.sum() * epoch / 86400.0),
         "mean_count": float(counts[mask].mean()) if mask.any() else math.nan,
         "ck_sleep_minutes_per_day": math.nan}
  if abs(epoch - 60.0) < 1e-9 and mask.any():
    asleep = sleep_metrics.cole_kripke(counts, epoch, mask)
    out["ck_sleep_minutes_per_day"] = float(asleep.sum() * 1440.0 / mask.sum())
  try:
    rhythm = sleep_metrics.nonparametric_circadian(counts, epoch, t0, mask)
    out.update({k: float(rhythm[k]) for k in ("IS", "IV", "L5", "M10", "RA")})
  except ValueError:
    out.update({k: math.nan for k in ("IS", "IV", "L5", "M10", "RA")})
  return out


def diary_night_rows(path: pathlib.Path, diary: str, nonwear_minutes: float):
  """One row per NIGHT period of the diary: Cole-Kripke sleep/wake scoring
  inside it (sleep_wake_statistics)."""
  from medgen_jax.data import actigraphy_files as af
  rec = af.read_actigraphy(path)
  periods = af.read_sleep_diary(diary)
  counts = np.asarray(rec.counts, np.float64)
  worn = af.worn_epochs(rec, nonwear_minutes, periods)
  asleep = sleep_metrics.cole_kripke(np.where(worn, counts, 0.0),
                                     rec.epoch_seconds, worn)
  names, rows = [], []
  for p in periods:
    if p.kind != "NIGHT":
      continue
    a = int(np.floor((p.start - rec.start).total_seconds() /
                     rec.epoch_seconds))
    b = int(np.ceil((p.end - rec.start).total_seconds() / rec.epoch_seconds))
    if b <= 0 or a >= counts.size:
      continue   # outside the recording
    a, b = max(a, 0), min(b, counts.size)
    names.append(f"{p.start:%m-%d %H:%M}")
    rows.append(sleep_metrics.sleep_wake_statistics(asleep[a:b], worn[a:b],
                                                    rec.epoch_seconds))
  if not rows:
    raise DataError(f"{diary}: no NIGHT period falls inside {path} "
                    f"(recorded from {rec.start}); is it this recording's "
                    "diary?")
  return names, rows, rec.epoch_seconds


def actigraphy_rows(path: pathlib.Path, epoch_seconds: float,
                    nonwear_minutes: float):
  if path.suffix.lower() == ".npz":
    x, mask, t0 = _series_from_npz(path)
    epoch = epoch_seconds or 60.0
    if (x[mask] < 0).any():
      raise DataError(f"{path}: negative values; expected activity counts")
    return ([f"sample {i}" for i in range(len(x))],
            [_actigraphy_measures(x[i], mask[i], epoch, float(t0[i]))
             for i in range(len(x))], epoch)
  from medgen_jax.data import actigraphy_files as af
  rec = af.read_actigraphy(path)
  counts = np.asarray(rec.counts, np.float64)
  worn = af.worn_epochs(rec, nonwear_minutes)
  t0 = af.clock_seconds(rec.start)
  return [path.name], [_actigraphy_measures(
      np.where(worn, counts, 0.0), worn, rec.epoch_seconds, t0)], (
          rec.epoch_seconds)


def _fmt(v: float) -> str:
  return "nan" if not math.isfinite(v) else f"{v:.4g}"


def report(path: str, kind: str = "auto", epoch_seconds: float = 0.0,
           nonwear_minutes: float = 90.0, as_json: bool = False,
           diary: str = "") -> str:
  """The text `medgen sleep-metrics` prints (with `diary`, an actigraphy
  recording gets one row per diary NIGHT instead of one for the whole)."""
  p = pathlib.Path(path).expanduser()
  if not p.is_file():
    raise DataError(f"{p}: no such file; medgen sleep-metrics takes a "
                    "hypnogram, an actigraphy recording or a sample .npz")
  if kind not in KINDS:
    raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
  if p.suffix.lower() == ".npz" and kind == "auto":
    raise ConfigError(f"{p}: a sample .npz does not say what it holds; pass "
                      "--kind hypnogram or --kind actigraphy")
  kind = _kind_of(p, kind)
  if kind == "hypnogram":
    names, rows, epoch = hypnogram_rows(p, epoch_seconds)
    keys = list(sleep_metrics.STAT_KEYS)
  elif diary:
    if p.suffix.lower() == ".npz":
      raise ConfigError("--diary describes a recording, not generated "
                        "samples; pass the recording's file")
    names, rows, epoch = diary_night_rows(p, diary, nonwear_minutes)
    keys = list(sleep_metrics.SLEEP_WAKE_KEYS)
  else:
    names, rows, epoch = actigraphy_rows(p, epoch_seconds, nonwear_minutes)
    keys = list(ACTIGRAPHY_KEYS)
  if as_json:
    return json.dumps({"file": str(p), "kind": kind, "epoch_seconds": epoch,
                       "rows": [dict(name=n, **{k: (r[k] if math.isfinite(
                           r[k]) else None) for k in keys})
                                for n, r in zip(names, rows)]}, indent=1)
  width = max(len(n) for n in names + ["measure"])
  lines = [f"{kind} measures of {p} ({epoch:g}-s epochs)",
           "measure".ljust(26) + "".join(n.rjust(max(width, 10) + 1)
                                         for n in names)]
  for k in keys:
    lines.append(k.ljust(26) + "".join(_fmt(r[k]).rjust(max(width, 10) + 1)
                                       for r in rows))
  return "\n".join(lines)
