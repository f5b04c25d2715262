"""Sleep measures of hypnograms and actigraphy, to compare real and generated
nights (pure numpy).

Hypnograms (one stage per scoring epoch, codes of data/sleep_stages.py:
0 W, 1 N1, 2 N2, 3 N3, 4 REM, negative = UNKNOWN):

  * `hypnogram_statistics`: the AASM summary measures (Iber et al. 2007, The
    AASM Manual for the Scoring of Sleep and Associated Events) with the
    names YASA uses (Vallat & Walker 2021, eLife 10:e70092);
  * `transition_matrix`: stage-to-stage transition counts or probabilities
    (Swihart et al. 2008, J Clin Sleep Med 4(4):349-355);
  * `bout_lengths`: run lengths per stage, the input of survival-curve
    analyses of sleep continuity (Norman et al. 2006, Sleep 29(12):1625-31);
  * `night_statistics_table`: `hypnogram_statistics` over many nights.

UNKNOWN epochs (unscored, artefact, movement) count in TIB and in SPT when
they lie inside it, and in nothing else: they are neither sleep nor wake, so
they are left out of TST, WASO and every stage, and they are not a stage in
transitions or bouts. Wake and sleep are read from the known epochs only.

Actigraphy (activity counts per epoch, optional bool mask, True = a worn,
valid epoch, as in the series datasets):

  * `cole_kripke_index`, `cole_kripke`: sleep/wake scoring of Cole et al.
    1992 (Sleep 15(5):461-469), 1-minute "mean activity" equation;
  * `nonparametric_circadian`: IS and IV (Witting et al. 1990, Biol
    Psychiatry 27:563-572; van Someren et al. 1999, Chronobiol Int
    16(4):505-518), L5, M10 and RA (Van Someren et al. 1997, J Biol Rhythms
    12(2):146-156).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from medgen_jax.data.sleep_stages import (EPOCH_SECONDS, NUM_STAGES, REM,
                                          STAGE_NAMES, UNKNOWN, WAKE)
from medgen_jax.errors import DataError

STAT_KEYS = ("TIB", "SPT", "TST", "WASO", "SE", "SME", "SOL", "REM_latency",
             *STAGE_NAMES, *(f"%{s}" for s in STAGE_NAMES[1:]), "awakenings",
             "unknown")
# Cole et al. 1992, "mean activity per minute" mode: weights of A-4 ... A+2.
CK_WEIGHTS = (106.0, 54.0, 58.0, 76.0, 230.0, 74.0, 67.0)
CK_SCALE = 0.001
_DAY = 86400.0


class SleepMetricError(DataError, ValueError):
  """An input of a sleep measure is invalid (also a ValueError)."""


def _stages(stages) -> np.ndarray:
  """int [T] stage codes; NaN and negative values become UNKNOWN."""
  s = np.asarray(stages)
  if s.ndim != 1:
    raise SleepMetricError(f"stages: expected a 1-D array [T], got shape "
                           f"{s.shape}")
  if s.dtype.kind == "f":
    s = np.where(np.isnan(s), UNKNOWN, s)
    if np.any(s != np.round(s)):
      raise SleepMetricError("stages: non-integer stage codes")
  elif s.size and s.dtype.kind not in "iu":
    raise SleepMetricError(f"stages: expected integer codes, got {s.dtype}")
  s = s.astype(np.int64)
  if np.any(s >= NUM_STAGES):
    raise SleepMetricError(f"stages: codes above {NUM_STAGES - 1} (REM); "
                           "expected 0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1 unknown")
  return np.where(s < 0, UNKNOWN, s)


def _runs(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(value, length) of each maximal run of equal consecutive values."""
  if s.size == 0:
    return s, s
  starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
  return s[starts], np.diff(np.r_[starts, s.size])


def hypnogram_statistics(stages, epoch_seconds: float = EPOCH_SECONDS
                         ) -> dict[str, float]:
  """AASM summary measures of one night.

  Durations are in minutes, efficiencies and stage shares in percent.

    * TIB: time in bed, every epoch including UNKNOWN;
    * SPT: sleep period time, first to last sleep (N1-REM) epoch inclusive
      (UNKNOWN epochs inside it included);
    * TST: total sleep time, the N1, N2, N3 and REM epochs;
    * WASO: wake epochs inside SPT;
    * SE = 100 TST / TIB; SME (sleep maintenance efficiency) = 100 TST / SPT;
    * SOL: sleep-onset latency, from the first epoch (lights out) to the
      first sleep epoch of any stage, N1 included (AASM);
    * REM_latency: from sleep onset to the first REM epoch (the clinical
      AASM definition). YASA's `Lat_REM` counts from the first epoch of the
      recording instead: REM_latency = Lat_REM - SOL. NaN without REM;
    * W, N1, N2, N3, REM: minutes of each stage over the whole night;
      %N1 ... %REM: percent of TST;
    * awakenings: wake bouts inside SPT, counted as sleep -> wake changes
      between consecutive known epochs (UNKNOWN epochs are skipped, so
      W ? W is one bout and N2 ? W is an awakening);
    * unknown: minutes of UNKNOWN epochs.

  Without any sleep epoch SPT, TST and SE are 0 and WASO, SME, SOL,
  REM_latency, the stage percentages and awakenings are NaN (undefined, as
  in YASA); an empty night also has SE NaN. No warning is raised.

  Args:
    stages: int [T] stage codes; negative values and NaN are UNKNOWN.
    epoch_seconds: duration of one epoch in seconds (30 in AASM scoring).

  Returns:
    {key: float} with the keys of STAT_KEYS, in that order.
  """
  s = _stages(stages)
  if not epoch_seconds > 0:
    raise SleepMetricError(f"epoch_seconds must be > 0, got {epoch_seconds}")
  minutes = epoch_seconds / 60.0
  nan = float("nan")
  sleep = np.flatnonzero(s > WAKE)
  out = {"TIB": s.size * minutes}
  stage_min = {name: np.count_nonzero(s == code) * minutes
               for code, name in enumerate(STAGE_NAMES)}
  tst = sum(stage_min[n] for n in STAGE_NAMES[1:])
  if sleep.size:
    onset, last = sleep[0], sleep[-1]
    spt = s[onset:last + 1]
    known = spt[spt != UNKNOWN]
    rem = np.flatnonzero(s == REM)
    out["SPT"] = spt.size * minutes
    out["TST"] = tst
    out["WASO"] = np.count_nonzero(spt == WAKE) * minutes
    out["SE"] = 100.0 * tst / out["TIB"]
    out["SME"] = 100.0 * tst / out["SPT"]
    out["SOL"] = onset * minutes
    out["REM_latency"] = (rem[0] - onset) * minutes if rem.size else nan
  else:
    out.update(SPT=0.0, TST=0.0, WASO=nan, SOL=nan, SME=nan, REM_latency=nan,
               SE=0.0 if s.size else nan)
  out.update(stage_min)
  for name in STAGE_NAMES[1:]:
    out[f"%{name}"] = 100.0 * stage_min[name] / tst if tst else nan
  if sleep.size:
    out["awakenings"] = float(np.count_nonzero(
        (known[1:] == WAKE) & (known[:-1] != WAKE)))
  else:
    out["awakenings"] = nan
  out["unknown"] = np.count_nonzero(s == UNKNOWN) * minutes
  return {k: float(out[k]) for k in STAT_KEYS}


def transition_matrix(stages, num_stages: int = NUM_STAGES,
                      normalize: bool = True) -> np.ndarray:
  """Stage transitions between consecutive epochs (Swihart et al. 2008).

  Entry [i, j] counts the epochs t with stage i followed by stage j at t+1
  (self-transitions i -> i on the diagonal). Pairs with an UNKNOWN epoch on
  either side are left out.

  Args:
    stages: int [T] stage codes.
    num_stages: size of the matrix; codes must be below it.
    normalize: if True, each row is divided by its sum, giving P(next = j |
      current = i); a row without any transition is NaN.

  Returns:
    float [num_stages, num_stages]: counts, or row-normalised probabilities.
  """
  s = _stages(stages)
  if np.any(s >= num_stages):
    raise SleepMetricError(f"stages: codes >= num_stages={num_stages}")
  a, b = s[:-1], s[1:]
  keep = (a != UNKNOWN) & (b != UNKNOWN)
  counts = np.bincount(a[keep] * num_stages + b[keep],
                       minlength=num_stages * num_stages).astype(np.float64)
  counts = counts.reshape(num_stages, num_stages)
  if not normalize:
    return counts
  rows = counts.sum(axis=1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), np.nan)


def bout_lengths(stages) -> dict[str, np.ndarray]:
  """Lengths, in epochs, of the runs (bouts) of each stage (Norman et al.
  2006).

  A bout is a maximal run of consecutive epochs of one stage; an UNKNOWN
  epoch ends the bout it interrupts and is itself no bout.

  Args:
    stages: int [T] stage codes.

  Returns:
    {stage name ("W", "N1", "N2", "N3", "REM"): int [n_bouts] lengths in
    order of occurrence}; empty arrays for stages that never occur.
  """
  value, length = _runs(_stages(stages))
  return {name: length[value == code].astype(np.int64)
          for code, name in enumerate(STAGE_NAMES)}


def night_statistics_table(nights: Iterable, epoch_seconds: float =
                           EPOCH_SECONDS) -> dict[str, np.ndarray]:
  """`hypnogram_statistics` of many nights, one array per measure.

  Args:
    nights: int [N, T] (pad shorter nights with UNKNOWN, which adds to TIB)
      or an iterable of int [T_i] arrays of any lengths.
    epoch_seconds: duration of one epoch in seconds.

  Returns:
    {key of STAT_KEYS: float [N]}, e.g. to compare the distributions of real
    and generated nights.
  """
  rows = [hypnogram_statistics(n, epoch_seconds) for n in nights]
  return {k: np.array([r[k] for r in rows], np.float64) for k in STAT_KEYS}


def _counts(counts, mask, name: str) -> tuple[np.ndarray, np.ndarray]:
  """float [T] counts (0.0 where invalid) and bool [T] valid."""
  x = np.asarray(counts, np.float64)
  if x.ndim != 1:
    raise SleepMetricError(f"{name}: expected counts [T], got shape {x.shape}")
  valid = np.isfinite(x)
  if mask is not None:
    mask = np.asarray(mask)
    if mask.shape != x.shape or mask.dtype != bool:
      raise SleepMetricError(f"{name}: mask must be bool {x.shape} (True = a "
                             f"valid epoch), got {mask.dtype} {mask.shape}")
    valid &= mask
  x = np.where(valid, x, 0.0)
  if np.any(x < 0):
    raise SleepMetricError(f"{name}: negative activity counts")
  return x, valid


def cole_kripke_index(counts, epoch_seconds: float = 60.0, mask=None,
                      scale: float = CK_SCALE) -> np.ndarray:
  """Cole-Kripke activity index D of each 1-minute epoch (Cole et al. 1992).

  D_t = P (106 A_{t-4} + 54 A_{t-3} + 58 A_{t-2} + 76 A_{t-1} + 230 A_t
           + 74 A_{t+1} + 67 A_{t+2}),
  the paper's equation for "mean activity per minute" scoring, P = 0.001.
  The paper's counts were the mean of the 2-s zero-crossing epochs of each
  minute: pyActigraphy's `CK(settings="mean")` therefore divides 1-minute
  count sums by 30 before applying P = 0.001 (scale=0.001 / 30 here);
  ActiGraph software divides counts by 100 and clips them at 300. Counts
  are used as given: pre-scale them, or pass `scale`, for such devices.

  Epochs beyond either end of the recording, masked epochs and NaN counts
  contribute 0 to their neighbours' windows (so D is biased towards sleep
  next to them); D itself is still computed at masked epochs.

  Args:
    counts: float [T] activity counts per 1-minute epoch, >= 0.
    epoch_seconds: must be 60; aggregate shorter epochs first (e.g. sum or
      average each minute, matching how `scale` was chosen).
    mask: optional bool [T], True = a valid (worn, recorded) epoch.
    scale: the factor P.

  Returns:
    float [T] D values (dimensionless).
  """
  if epoch_seconds != 60.0:
    raise SleepMetricError(
        f"cole_kripke: the Cole et al. 1992 weights are for 1-minute epochs, "
        f"got epoch_seconds={epoch_seconds}; aggregate the counts to 1 minute "
        "first")
  x, _ = _counts(counts, mask, "cole_kripke")
  padded = np.concatenate([np.zeros(4), x, np.zeros(2)])
  d = sum(w * padded[k:k + x.size] for k, w in enumerate(CK_WEIGHTS))
  return scale * np.asarray(d, np.float64)


def cole_kripke(counts, epoch_seconds: float = 60.0, mask=None,
                scale: float = CK_SCALE, threshold: float = 1.0) -> np.ndarray:
  """Cole-Kripke sleep/wake scoring: sleep where D < threshold (1 in Cole et
  al. 1992), D from `cole_kripke_index` (see it for scale and borders).

  Webster's rescoring rules are not applied. Masked and NaN epochs are
  scored False (not sleep): their state is unknown; read them from `mask`.

  Args:
    counts: float [T] activity counts per 1-minute epoch.
    epoch_seconds: must be 60.
    mask: optional bool [T], True = a valid epoch.
    scale: the factor P.
    threshold: D at or above it is wake.

  Returns:
    bool [T], True = sleep.
  """
  d = cole_kripke_index(counts, epoch_seconds, mask, scale)
  _, valid = _counts(counts, mask, "cole_kripke")
  return (d < threshold) & valid


def _whole(value: float, name: str) -> int:
  n = int(round(value))
  if n < 1 or abs(value - n) > 1e-9 * max(1.0, value):
    raise SleepMetricError(f"{name} must be a whole positive number, got "
                           f"{value}")
  return n


def _window_means(profile: np.ndarray, width: int) -> np.ndarray:
  """Circular means over `width` consecutive phases starting at each phase,
  skipping NaN phases (NaN where a window holds none)."""
  ok = ~np.isnan(profile)
  vals = np.concatenate([np.where(ok, profile, 0.0)] * 2)
  cnt = np.concatenate([ok] * 2).astype(np.float64)
  csum, ccnt = (np.r_[0.0, np.cumsum(v)] for v in (vals, cnt))
  n = profile.size
  total = csum[width:width + n] - csum[:n]
  num = ccnt[width:width + n] - ccnt[:n]
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(num > 0, total / np.where(num > 0, num, 1.0), np.nan)


def nonparametric_circadian(counts, epoch_seconds: float,
                            start_seconds_of_day: float = 0.0, mask=None, *,
                            bin_seconds: float = 3600.0,
                            min_bin_coverage: float = 0.5) -> dict[str, float]:
  """Non-parametric rest-activity rhythm measures of one recording.

  Epoch i starts at clock time start_seconds_of_day + i epoch_seconds
  (the start rounded to the nearest whole epoch). Masked and NaN epochs are
  excluded (treated as missing, never as zero activity).

  IS and IV use the mean counts of clock-aligned bins of `bin_seconds`
  (hourly by default, like pyActigraphy's freq="1h"); a bin with fewer than
  min_bin_coverage of its epochs valid (e.g. at the recording's ends) is
  missing. With x_i the N non-missing bins, x the grand mean, x_h the mean
  of the bins at time of day h and p the number of times of day observed,
  the formulas of van Someren et al. 1999 are

    IS = N sum_h (x_h - x)^2 / (p sum_i (x_i - x)^2)             in [0, 1],
    IV = (sum_i (x_i - x_{i-1})^2 / N_d) / (sum_i (x_i - x)^2 / N)   ~[0, 2],

  where the N_d differences run over consecutive bins that are both
  present (N_d = N - 1 without gaps, the paper's case). pyActigraphy uses
  pandas' ddof=1 variances, bins starting at the recording's first epoch
  and hourly sums; on complete days of complete bins IS_here = IS_pyAct
  (p - 1) / p N / (N - 1) and IV_here = IV_pyAct N / (N - 1).

  L5 and M10 are the mean counts per epoch of the least active 5 h and the
  most active 10 h of the average 24-h profile (per-epoch-of-day mean over
  days, valid epochs only), at epoch resolution and circular over midnight,
  as pyActigraphy does; a profile phase never observed is skipped in its
  windows. RA = (M10 - L5) / (M10 + L5) (relative amplitude).

  Args:
    counts: float [T] activity counts per epoch, >= 0.
    epoch_seconds: epoch duration in seconds; must divide `bin_seconds`,
      which must divide 24 h.
    start_seconds_of_day: clock time of the first epoch's start, seconds
      after midnight.
    mask: optional bool [T], True = a valid (worn) epoch.
    bin_seconds: IS/IV bin width in seconds (epoch_seconds = raw epochs).
    min_bin_coverage: fraction in [0, 1] of valid epochs a bin needs.

  Returns:
    {"IS", "IV" (dimensionless), "L5", "M10" (counts per epoch), "L5_start",
    "M10_start" (hours of day in [0, 24)), "RA" (dimensionless)}; NaN where
    undefined (e.g. IS/IV of a constant signal).
  """
  x, valid = _counts(counts, mask, "nonparametric_circadian")
  per_bin = _whole(bin_seconds / epoch_seconds, "bin_seconds / epoch_seconds")
  per_day = _whole(_DAY / epoch_seconds, "86400 / epoch_seconds")
  bins_per_day = _whole(_DAY / bin_seconds, "86400 / bin_seconds")
  nan = float("nan")
  grid = int(round(start_seconds_of_day / epoch_seconds)) % per_day \
      + np.arange(x.size)
  # IS / IV on binned means.
  b = grid // per_bin
  b0 = b[0] if x.size else 0
  sums = np.bincount(b - b0, x, minlength=1)
  n = np.bincount(b - b0, valid, minlength=1)
  ok = (n > 0) & (n >= min_bin_coverage * per_bin)
  xb = np.where(ok, sums / np.where(ok, n, 1), np.nan)
  phase = (np.arange(xb.size) + b0) % bins_per_day
  v = xb[ok]
  ss = np.sum((v - v.mean()) ** 2) if v.size else 0.0
  out = {"IS": nan, "IV": nan}
  if v.size > 1 and ss > 0:
    ph = phase[ok]
    counts_h = np.bincount(ph, minlength=bins_per_day)
    mean_h = np.bincount(ph, v, minlength=bins_per_day)[counts_h > 0] \
        / counts_h[counts_h > 0]
    out["IS"] = v.size * np.sum((mean_h - v.mean()) ** 2) / (
        mean_h.size * ss)
    d = np.diff(xb)
    d = d[~np.isnan(d)]
    if d.size:
      out["IV"] = np.mean(d ** 2) / (ss / v.size)
  # L5 / M10 on the average 24-h profile at epoch resolution.
  ph = grid % per_day
  n_ph = np.bincount(ph[valid], minlength=per_day)
  s_ph = np.bincount(ph[valid], x[valid], minlength=per_day)
  profile = np.where(n_ph > 0, s_ph / np.where(n_ph > 0, n_ph, 1), np.nan)
  for key, hours, pick in (("L5", 5, np.argmin), ("M10", 10, np.argmax)):
    means = _window_means(profile, _whole(hours * 3600 / epoch_seconds,
                                          "hours / epoch_seconds"))
    if np.all(np.isnan(means)):
      out[key], out[f"{key}_start"] = nan, nan
      continue
    i = int(pick(np.where(np.isnan(means), np.inf if key == "L5" else -np.inf,
                          means)))
    out[key], out[f"{key}_start"] = means[i], i * epoch_seconds / 3600.0
  total = out["M10"] + out["L5"]
  out["RA"] = (out["M10"] - out["L5"]) / total if total > 0 else nan
  return {k: float(out[k]) for k in ("IS", "IV", "L5", "M10", "L5_start",
                                     "M10_start", "RA")}


SLEEP_WAKE_KEYS = ("TIB", "TST", "SE", "SOL", "WASO", "awakenings")


def sleep_wake_statistics(asleep, valid, epoch_seconds: float = 60.0
                          ) -> dict[str, float]:
  """Night measures from a sleep/wake scoring (e.g. `cole_kripke` over a
  diary's NIGHT period): the hypnogram measures that need only two states.

  TIB counts every epoch; TST the sleep epochs; SE = 100 TST / TIB; SOL the
  minutes before the first sleep epoch; WASO the wake epochs between the
  first and the last sleep epoch; awakenings the wake bouts between them.
  Invalid (masked) epochs are neither sleep nor wake: they count in TIB
  only, and they do not split or end a wake bout. A night with no sleep has
  TST 0 and SOL, WASO, awakenings NaN.

  Args:
    asleep: bool [T], True = sleep.
    valid: bool [T], False = masked (non-wear, missing).
    epoch_seconds: seconds per epoch.

  Returns:
    {key of SLEEP_WAKE_KEYS: float} (minutes, percent, count).
  """
  asleep = np.asarray(asleep, bool)
  valid = np.asarray(valid, bool)
  if asleep.shape != valid.shape or asleep.ndim != 1:
    raise SleepMetricError(f"sleep_wake_statistics: asleep {asleep.shape} "
                           f"and valid {valid.shape} must be the same [T]")
  minutes = epoch_seconds / 60.0
  sleep = asleep & valid
  wake = ~asleep & valid
  tib = asleep.size * minutes
  out = {"TIB": tib, "TST": float(sleep.sum()) * minutes, "SOL": math.nan,
         "WASO": math.nan, "awakenings": math.nan}
  out["SE"] = 100.0 * out["TST"] / tib if tib else math.nan
  idx = np.flatnonzero(sleep)
  if idx.size:
    first, last = idx[0], idx[-1]
    out["SOL"] = first * minutes
    inside = wake[first:last + 1]
    out["WASO"] = float(inside.sum()) * minutes
    known = np.flatnonzero(valid[first:last + 1])
    states = sleep[first:last + 1][known]
    out["awakenings"] = float(np.sum(states[:-1] & ~states[1:]))
  return {k: float(out[k]) for k in SLEEP_WAKE_KEYS}
