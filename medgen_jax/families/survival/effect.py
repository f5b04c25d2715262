"""Treatment effects from a fitted survival model: counterfactual arms.

For the same patients, the model predicts a survival curve under every arm
(the treatment input set to each arm in turn; the covariates unchanged).
From those curves:

  * the difference in restricted mean survival time up to tau,
    dRMST_a = mean_i [RMST(S(. | x_i, a), tau) - RMST(S(. | x_i, 0), tau)],
    the expected survival gained in the first tau time units (Royston &
    Parmar 2013), a model-free summary that needs no proportional hazards;
  * for Cox models, the average log hazard ratio mean_i [r(x_i, a) - r(x_i, 0)]
    (exactly the log hazard ratio when the network learns no interaction);

each with its spread over patients as a bootstrap: patients resampled with
replacement `bootstrap` times (the standard deviation and the 2.5-97.5 %
percentile interval of the resampled means). The spread is that of the
average over this cohort for the fitted model; it does not include the
model's own training uncertainty (refitting per resample would).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from medgen_jax.metrics.survival import rmst


def bootstrap_mean(values: np.ndarray, resamples: int,
                   seed: int = 0) -> dict[str, float]:
  """Mean of `values` [n] with its bootstrap std and 95 % interval."""
  values = np.asarray(values, np.float64)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(values), size=(resamples, len(values)))
  means = values[idx].mean(1)
  lo, hi = np.percentile(means, [2.5, 97.5])
  return {"mean": float(values.mean()), "std": float(means.std(ddof=1))
          if resamples > 1 else 0.0, "lo": float(lo), "hi": float(hi)}


def arm_effects(curves: Callable[[int], tuple[np.ndarray, np.ndarray]],
                arm_names: Sequence[str], times: np.ndarray, tau: float,
                resamples: int, cox: bool, seed: int = 0) -> list[dict]:
  """Effects of every arm against arm 0 for the same patients.

  Args:
    curves: arm -> (risk [n], survival [n, m] at `times`) of every patient
      with the treatment set to that arm.
    arm_names: the arms' names (arm 0 is the reference).
    times: [m] increasing times of the curves.
    tau: RMST horizon.
    resamples: bootstrap resamples.
    cox: also report the average hazard ratio (risk is the log risk).
    seed: bootstrap seed.

  Returns:
    One dict per arm a >= 1: arm, reference, rmst (per arm means),
    delta_rmst {mean, std, lo, hi}, and for Cox log_hr {mean, std, lo, hi}
    and hr (exp of the mean log HR with exp of its interval).
  """
  per_arm = [curves(a) for a in range(len(arm_names))]
  rmsts = [rmst(times, s, tau) for _, s in per_arm]          # each [n]
  out = []
  for a in range(1, len(arm_names)):
    row = {"arm": arm_names[a], "reference": arm_names[0], "tau": float(tau),
           "rmst_arm": float(rmsts[a].mean()),
           "rmst_reference": float(rmsts[0].mean()),
           "delta_rmst": bootstrap_mean(rmsts[a] - rmsts[0], resamples,
                                        seed)}
    if cox:
      log_hr = bootstrap_mean(per_arm[a][0] - per_arm[0][0], resamples, seed)
      row["log_hr"] = log_hr
      row["hr"] = {"mean": float(np.exp(log_hr["mean"])),
                   "lo": float(np.exp(log_hr["lo"])),
                   "hi": float(np.exp(log_hr["hi"]))}
    out.append(row)
  return out


def sample_times(surv: np.ndarray, times: np.ndarray, uniforms: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Event times drawn from survival curves by inversion.

  T = inf {t : S(t) <= U} with U ~ Uniform(0, 1), linearly interpolated
  between the grid points; a draw whose U is below the curve's last value
  has not had its event within the grid: it is censored at times[-1].

  Args:
    surv: [n, m] survival curves at `times` (non-increasing in t).
    times: [m] increasing grid starting at 0 (S(0) = 1).
    uniforms: [n] draws of U.

  Returns:
    (time [n] float32, event [n] int32).
  """
  surv = np.minimum.accumulate(np.asarray(surv, np.float64), axis=1)
  u = np.asarray(uniforms, np.float64)
  below = surv <= u[:, None]                                  # [n, m]
  event = below.any(1)
  k = np.where(event, np.argmax(below, 1), len(times) - 1)
  k0 = np.maximum(k - 1, 0)
  s0, s1 = surv[np.arange(len(u)), k0], surv[np.arange(len(u)), k]
  t0, t1 = times[k0], times[k]
  frac = np.where(s0 > s1, (s0 - u) / np.where(s0 > s1, s0 - s1, 1.0), 1.0)
  t = np.where(event, t0 + np.clip(frac, 0.0, 1.0) * (t1 - t0), times[-1])
  return t.astype(np.float32), event.astype(np.int32)
