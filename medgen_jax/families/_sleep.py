"""The sleep domains of series runs: what a hypnogram or actigraphy run adds
to its evaluations and samples (registered in families/_sequence.py's
`DOMAINS`, chosen by the dataset's metadata "domain").

* "hypnogram": sleep statistics (metrics/sleep.py) of generated nights
  against held-out real ones: the gap between their means for TST, SE, SOL,
  WASO, REM latency, stage shares and awakenings; the total-variation
  distance of the stage distributions; the mean absolute difference of the
  stage transition matrices. Picture: step plots, real above generated.
* "actigraphy": rest-activity measures of generated days against real
  ones: mean counts, Cole-Kripke sleep minutes per day, L5, M10, RA and IV
  per window, IS over the windows laid end to end (day-to-day stability);
  the discriminative score is computed on log1p(counts) by the generic
  scores. Picture: an actogram, real days above generated days.

Not a family (the underscore keeps it out of `medgen families`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from medgen_jax import sleep_pictures
from medgen_jax.data.sleep_stages import NUM_STAGES
from medgen_jax.families._sequence import DOMAINS, SeriesView
from medgen_jax.metrics import sleep as sleep_metrics

SHOWN = 4                         # nights / windows drawn per group
NIGHT_KEYS = ("TST", "SE", "SOL", "WASO", "REM_latency", "%N1", "%N2",
              "%N3", "%REM", "awakenings")
DAY_KEYS = ("mean_count", "ck_sleep_minutes", "L5", "M10", "RA", "IV")


def _epoch(task) -> float:
  return 1.0 / float(task.config[task.section].rate)


def _stages(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Stage codes [n, T] with UNKNOWN (-1) at masked steps."""
  return np.where(mask, np.rint(np.asarray(x)[..., 0]), -1).astype(np.int64)


def _gap(real: np.ndarray, fake: np.ndarray) -> float:
  """Generated mean minus real mean over the finite values (NaN if none)."""
  r, f = real[np.isfinite(real)], fake[np.isfinite(fake)]
  return float(f.mean() - r.mean()) if r.size and f.size else float("nan")


def _transitions(stages: np.ndarray) -> np.ndarray:
  total = np.zeros((NUM_STAGES, NUM_STAGES))
  for night in stages:
    total += sleep_metrics.transition_matrix(night, normalize=False)
  return total / np.maximum(total.sum(1, keepdims=True), 1.0)


def hypnogram_scores(task, real: Mapping[str, np.ndarray],
                     fake: Mapping[str, np.ndarray],
                     prefix: str) -> dict[str, float]:
  epoch = _epoch(task)
  rs = _stages(real["x"], real["mask"])
  fs = _stages(fake["x_norm"], fake["mask"])
  rt = sleep_metrics.night_statistics_table(rs, epoch)
  ft = sleep_metrics.night_statistics_table(fs, epoch)
  out = {f"{prefix}_gap_{k.replace('%', 'pct_')}": _gap(rt[k], ft[k])
         for k in NIGHT_KEYS}
  share = [np.bincount(s[s >= 0], minlength=NUM_STAGES) / max((s >= 0).sum(),
                                                               1)
           for s in (rs, fs)]
  out[f"{prefix}_stage_tv"] = float(0.5 * np.abs(share[0] - share[1]).sum())
  out[f"{prefix}_transition_mae"] = float(np.abs(
      _transitions(rs) - _transitions(fs)).mean())
  return out


def day_measures(x: np.ndarray, mask: np.ndarray, t0: np.ndarray,
                 epoch: float) -> dict[str, np.ndarray]:
  """Per window: mean count, Cole-Kripke sleep minutes per day (1-minute
  epochs only; NaN otherwise), L5, M10, RA, IV; plus "IS" over the windows
  laid end to end (one value, repeated)."""
  out = {k: np.full(x.shape[0], np.nan) for k in DAY_KEYS}
  counts = np.asarray(x, np.float64)[..., 0]
  for i in range(counts.shape[0]):
    c, m = counts[i], np.asarray(mask[i], bool)
    if not m.any():
      continue
    out["mean_count"][i] = c[m].mean()
    if abs(epoch - 60.0) < 1e-9:
      asleep = sleep_metrics.cole_kripke(c, epoch, m)
      out["ck_sleep_minutes"][i] = asleep.sum() * 1440.0 / m.sum()
    try:
      rhythm = sleep_metrics.nonparametric_circadian(c, epoch, float(t0[i]), m)
    except ValueError:   # too short or too gappy a window for a 24-h profile
      continue
    for k in ("L5", "M10", "RA", "IV"):
      out[k][i] = rhythm[k]
  try:
    whole = sleep_metrics.nonparametric_circadian(
        counts.reshape(-1), epoch, float(t0[0]), np.asarray(mask).reshape(-1))
    out["IS"] = np.full(x.shape[0], whole["IS"])
  except ValueError:
    out["IS"] = np.full(x.shape[0], np.nan)
  return out


def actigraphy_scores(task, real: Mapping[str, np.ndarray],
                      fake: Mapping[str, np.ndarray],
                      prefix: str) -> dict[str, float]:
  epoch = _epoch(task)
  t0 = real.get("t0", np.zeros(real["x"].shape[0]))
  r = day_measures(real["x"], real["mask"], t0, epoch)
  f = day_measures(fake["x_norm"], fake["mask"],
                   fake.get("t0", np.zeros(fake["x_norm"].shape[0])), epoch)
  return {f"{prefix}_gap_{k}": _gap(r[k], f[k]) for k in DAY_KEYS + ("IS",)}


def hypnogram_picture(task, real, fake) -> np.ndarray:
  groups, masks, titles = [], [], []
  if real is not None:
    groups.append(_stages(real["x"][:SHOWN], real["mask"][:SHOWN]))
    masks.append(real["mask"][:SHOWN])
    titles.append("real (held out)")
  groups.append(_stages(fake["x_norm"][:SHOWN], fake["mask"][:SHOWN]))
  masks.append(fake["mask"][:SHOWN])
  titles.append("generated")
  return sleep_pictures.hypnogram_panel(groups, masks, titles, _epoch(task))


def actigraphy_picture(task, real, fake) -> np.ndarray:
  groups, masks, starts, titles = [], [], [], []
  for name, batch, key in (("real (held out)", real, "x"),
                           ("generated", fake, "x_norm")):
    if batch is None:
      continue
    x = np.asarray(batch[key])[:SHOWN, :, 0]
    groups.append(x)
    masks.append(np.asarray(batch["mask"])[:SHOWN])
    starts.append(np.asarray(batch.get("t0", np.zeros(x.shape[0])))[:SHOWN])
    titles.append(name)
  return sleep_pictures.actogram(groups, masks, starts, titles, _epoch(task))


DOMAINS.register("hypnogram", SeriesView(hypnogram_scores, hypnogram_picture))
DOMAINS.register("actigraphy", SeriesView(actigraphy_scores,
                                          actigraphy_picture))
