"""Survival-analysis metrics of risk scores and predicted survival curves.

Conventions: `time` float [n] >= 0, `event` [n] in {0, 1} (1 = event observed,
0 = right-censored), `risk` float [n] where a HIGHER risk means an EARLIER
expected event, predicted survival curves `surv` float [n, m] evaluated at
strictly increasing `times` [m]. All functions are pure numpy.

  * `kaplan_meier`, `step_at`: the product-limit estimate and right-continuous
    step-function evaluation;
  * `harrell_c`: Harrell's concordance (Harrell et al. 1982, "Evaluating the
    yield of medical tests", JAMA 247:2543);
  * `uno_c`: Uno's IPCW concordance (Uno, Cai, Pencina, D'Agostino & Wei
    2011, "On the C-statistics for evaluating overall adequacy of risk
    prediction procedures with censored survival data", Stat Med 30:1105);
  * `brier_scores`, `integrated_brier`: the IPCW time-dependent Brier score
    (Graf, Schmoor, Sauerbrei & Schumacher 1999, "Assessment and comparison of
    prognostic classification schemes for survival data", Stat Med 18:2529);
  * `evaluation_times`, `rmst`, `calibration`, `survival_metrics`.
The concordance and Brier conventions are scikit-survival's (0.28), so values
agree with `sksurv.metrics` to rounding:
  * a comparable pair is (i, j) with i an event and t_j > t_i, or t_j == t_i
    with j censored; tied risks (|r_i - r_j| <= tied_tol) count 0.5;
  * the censoring survival G is the Kaplan-Meier estimate of the censoring
    distribution on the TRAIN data, with events at a time taken to precede
    censorings at that time, and is evaluated right-continuously, G(t) =
    P(C > t) (not the left limit G(t-)), also at a patient's own event time;
  * Uno's weights are 1 / G(t_i)^2 for events with t_i < tau, else 0.
Where G is needed beyond the last training time (and has not dropped to 0)
a ConfigError is raised; `brier_scores` needs G only at `times` and at event
times <= times[-1] (sksurv also requires every test time to be in range).
"""

from __future__ import annotations

import numpy as np

from medgen_jax.errors import ConfigError

_PAIR_BLOCK = 1 << 21   # pairs held in memory at once by _concordance


def _survival_data(time, event, name: str = "time"):
  """Validates time [n] >= 0 and event [n] in {0, 1}; returns float, bool."""
  time, event = np.asarray(time, np.float64), np.asarray(event)
  if time.ndim != 1 or not time.size or event.shape != time.shape:
    raise ValueError(f"{name}: expected time [n] and event [n], n >= 1, got "
                     f"shapes {time.shape} and {event.shape}")
  if not np.isfinite(time).all() or (time < 0).any():
    raise ValueError(f"{name}: times must be finite and >= 0")
  if not np.isin(event, (0, 1)).all():
    raise ValueError(f"{name}: event must hold only 0 (censored) and 1")
  return time, event.astype(bool)


def _counts(time, event):
  """Per distinct time: times [k], at risk [k], events [k], censored [k]."""
  uniq, inverse = np.unique(time, return_inverse=True)
  n_obs = np.bincount(inverse, minlength=uniq.size)               # [k]
  n_event = np.bincount(inverse, weights=event, minlength=uniq.size)
  at_risk = time.size - np.cumsum(n_obs) + n_obs                  # T >= u
  return uniq, at_risk, n_event, n_obs - n_event


def kaplan_meier(time, event) -> tuple[np.ndarray, np.ndarray]:
  """Kaplan-Meier product-limit estimate of P(T > t).

  Args:
    time: float [n], event or censoring times.
    event: [n], 1 = event observed, 0 = right-censored.

  Returns:
    (times [k], surv [k]): the distinct event times, sorted, and the estimate
    just after each (right-continuous; 1 before times[0]).
  """
  time, event = _survival_data(time, event)
  uniq, at_risk, n_event, _ = _counts(time, event)
  surv = np.cumprod(1.0 - n_event / at_risk)                      # [k]
  keep = n_event > 0
  return uniq[keep], surv[keep]


def step_at(times, values, t, initial: float = 1.0) -> np.ndarray:
  """Evaluates a right-continuous step function at query points.

  Args:
    times: float [k], increasing jump times.
    values: float [..., k], the value from times[j] until times[j + 1].
    t: float [q] (or scalar), query points.
    initial: the value before times[0].

  Returns:
    float [..., q] (values.shape[:-1] + t.shape).
  """
  times, values = np.asarray(times, np.float64), np.asarray(values, np.float64)
  if times.ndim != 1 or values.shape[-1:] != times.shape:
    raise ValueError(f"step_at: times {times.shape} and values "
                     f"{values.shape} do not match along the last axis")
  idx = np.searchsorted(times, np.asarray(t, np.float64), side="right") - 1
  if times.size == 0:
    return np.full(values.shape[:-1] + idx.shape, float(initial))
  picked = np.take(values, np.maximum(idx, 0), axis=-1)
  return np.where(idx >= 0, picked, initial)


def _censoring_survival(train_time, train_event, t, what: str) -> np.ndarray:
  """G(t) = P(C > t) from the train censoring KM at query points t [q]."""
  train_time, train_event = _survival_data(train_time, train_event,
                                           "train_time")
  uniq, at_risk, n_event, n_cens = _counts(train_time, train_event)
  ratio = np.divide(n_cens, at_risk - n_event, out=np.zeros(uniq.size),
                    where=n_cens > 0)
  g = np.cumprod(1.0 - ratio)                                     # [k]
  t = np.asarray(t, np.float64)
  if g[-1] > 0 and t.size and t.max() > uniq[-1]:
    raise ConfigError(
        f"{what}: time {t.max():g} is beyond the training follow-up "
        f"(last time {uniq[-1]:g}), where the censoring distribution is "
        "unknown; choose earlier times (or tau)")
  return step_at(uniq, g, t)


def _concordance(time, event, risk, weights, tied_tol: float) -> float:
  """Weighted concordance over comparable pairs, in blocks of event rows."""
  risk = np.asarray(risk, np.float64)
  if risk.shape != time.shape or not np.isfinite(risk).all():
    raise ValueError(f"risk: expected finite float {time.shape}, got shape "
                     f"{risk.shape}")
  o = np.argsort(time, kind="stable")          # rows and columns by time
  time, event, risk, weights = time[o], event[o], risk[o], weights[o]
  rows = np.flatnonzero(event & (weights > 0))
  block = max(1, _PAIR_BLOCK // max(time.size, 1))
  num = den = 0.0
  for start in range(0, rows.size, block):
    r = rows[start:start + block]
    first = np.searchsorted(time, time[r[0]])   # earlier columns never pair
    t_j, e_j, risk_j = time[first:], event[first:], risk[first:]  # [c]
    t_i, risk_i = time[r, None], risk[r, None]                    # [b, 1]
    comparable = (t_j > t_i) | ((t_j == t_i) & ~e_j)              # [b, c]
    diff = risk_j - risk_i                                        # [b, c]
    concordant = np.count_nonzero(comparable & (diff < -tied_tol), 1)
    tied = np.count_nonzero(comparable & (np.abs(diff) <= tied_tol), 1)
    num += weights[r] @ (concordant + 0.5 * tied)
    den += weights[r] @ np.count_nonzero(comparable, 1).astype(np.float64)
  if den == 0:
    raise ConfigError("concordance: no comparable pairs (an event followed "
                      "by a longer time); need more events or follow-up")
  return float(num / den)


def harrell_c(time, event, risk, *, tied_tol: float = 1e-8) -> float:
  """Harrell's concordance index (Harrell et al. 1982).

  Args:
    time: float [n]; event: [n] 0/1; risk: float [n], higher = earlier event.
    tied_tol: risks within this distance are tied and count 0.5.

  Returns:
    The fraction of comparable pairs ordered correctly by risk; equals
    sksurv's `concordance_index_censored(event, time, risk)[0]`.
  """
  time, event = _survival_data(time, event)
  return _concordance(time, event, risk, np.ones(time.size), tied_tol)


def uno_c(train_time, train_event, time, event, risk, tau=None, *,
          tied_tol: float = 1e-8) -> float:
  """Uno's IPCW concordance index (Uno et al. 2011).

  Args:
    train_time, train_event: [n_train], data for the censoring KM G.
    time, event, risk: [n], the evaluated (test) patients.
    tau: truncation time; only events with time < tau are weighted.
    tied_tol: risks within this distance are tied and count 0.5.

  Returns:
    Concordance with pair weights 1 / G(t_i)^2; equals sksurv's
    `concordance_index_ipcw(y_train, y_test, risk, tau)[0]`.
  """
  time, event = _survival_data(time, event)
  use = event if tau is None else event & (time < tau)            # [n]
  g = _censoring_survival(train_time, train_event, time[use], "uno_c")
  if (g == 0).any():
    raise ConfigError("uno_c: the training censoring survival is 0 at some "
                      "event time; pass a smaller tau")
  weights = np.zeros(time.size)
  weights[use] = 1.0 / np.square(g)
  return _concordance(time, event, risk, weights, tied_tol)


def _check_times(time, surv, times, what: str):
  """Validates times [m] inside [min(time), max(time)) and surv [n, m]."""
  times = np.atleast_1d(np.asarray(times, np.float64))
  surv = np.asarray(surv, np.float64)
  if times.ndim != 1 or surv.shape != (time.size, times.size):
    raise ValueError(f"{what}: expected surv [{time.size}, {times.size}], "
                     f"got {surv.shape} (times {times.shape})")
  if (np.diff(times) <= 0).any():
    raise ConfigError(f"{what}: evaluation times must be strictly increasing")
  if times[0] < time.min() or times[-1] >= time.max():
    raise ConfigError(
        f"{what}: evaluation times [{times[0]:g}, {times[-1]:g}] must lie in "
        f"the test follow-up [{time.min():g}, {time.max():g}); see "
        "evaluation_times")
  return surv, times


def brier_scores(train_time, train_event, time, event, surv,
                 times) -> np.ndarray:
  """IPCW time-dependent Brier score (Graf et al. 1999).

  Args:
    train_time, train_event: [n_train], data for the censoring KM G.
    time, event: [n], the evaluated (test) patients.
    surv: float [n, m], predicted P(T > times[j]) per patient.
    times: float [m], strictly increasing, inside the test follow-up.

  Returns:
    float [m]: mean of S^2 / G(t_i) over events with t_i <= t plus
    (1 - S)^2 / G(t) over patients with t_i > t; equals sksurv's
    `brier_score(y_train, y_test, surv, times)[1]`.
  """
  time, event = _survival_data(time, event)
  surv, times = _check_times(time, surv, times, "brier_scores")
  case = event[:, None] & (time[:, None] <= times)                # [n, m]
  control = time[:, None] > times                                 # [n, m]
  g_t = _censoring_survival(train_time, train_event, times, "brier_scores")
  need = case.any(1)                                              # [n]
  g_y = np.ones(time.size)
  g_y[need] = _censoring_survival(train_time, train_event, time[need],
                                  "brier_scores")
  inv_y = np.divide(1.0, g_y, out=np.zeros_like(g_y), where=g_y > 0)
  inv_t = np.divide(1.0, g_t, out=np.zeros_like(g_t), where=g_t > 0)
  terms = (np.square(surv) * case * inv_y[:, None]
           + np.square(1.0 - surv) * control * inv_t)             # [n, m]
  return terms.mean(0)


def integrated_brier(train_time, train_event, time, event, surv,
                     times) -> float:
  """Integrated Brier score: trapezoid of `brier_scores` over the range.

  Args: as `brier_scores`, with at least two times.

  Returns:
    The trapezoid integral divided by times[-1] - times[0]; equals sksurv's
    `integrated_brier_score`.
  """
  times = np.atleast_1d(np.asarray(times, np.float64))
  if times.size < 2:
    raise ConfigError("integrated_brier: need at least two evaluation times")
  bs = brier_scores(train_time, train_event, time, event, surv, times)
  return float(np.trapezoid(bs, times) / (times[-1] - times[0]))


def evaluation_times(time, event, n: int = 50, lo: float = 0.1,
                     hi: float = 0.9) -> np.ndarray:
  """An even grid [n] between the lo and hi quantiles of the event times.

  The grid lies strictly inside the follow-up [min(time), max(time)), so
  `brier_scores` (and sksurv) accept it for these patients.
  """
  time, event = _survival_data(time, event)
  if not 0.0 <= lo < hi <= 1.0 or n < 2:
    raise ConfigError(f"evaluation_times: need 0 <= lo < hi <= 1 and n >= 2, "
                      f"got lo={lo}, hi={hi}, n={n}")
  if not event.any():
    raise ConfigError("evaluation_times: no events, so no evaluation times")
  t_lo, t_hi = np.quantile(time[event], [lo, hi])
  t_hi = min(t_hi, np.nextafter(time.max(), -np.inf))
  t_lo = max(t_lo, time.min())
  if not t_lo < t_hi:
    raise ConfigError(f"evaluation_times: the event-time quantiles {lo} and "
                      f"{hi} do not span an interval; widen them")
  return np.linspace(t_lo, t_hi, n)


def rmst(times, surv, tau: float) -> np.ndarray:
  """Restricted mean survival time: the area under S from 0 to tau.

  Args:
    times: float [m], nondecreasing times >= 0 at which surv jumps.
    surv: float [m] or [n, m], a right-continuous step curve (1 before
      times[0]).
    tau: the horizon, > 0.

  Returns:
    float [] or [n].
  """
  times, surv = np.asarray(times, np.float64), np.asarray(surv, np.float64)
  if times.ndim != 1 or surv.shape[-1:] != times.shape:
    raise ValueError(f"rmst: times {times.shape} and surv {surv.shape} do "
                     "not match")
  if (np.diff(times) < 0).any() or (times < 0).any():
    raise ValueError("rmst: times must be nondecreasing and >= 0")
  if not tau > 0:
    raise ConfigError(f"rmst: tau must be > 0, got {tau}")
  edges = np.clip(np.concatenate([[0.0], times, [tau]]), 0.0, tau)  # [m+2]
  heights = np.concatenate([np.ones(surv.shape[:-1] + (1,)), surv], -1)
  return np.sum(heights * np.diff(edges), -1)


def calibration(time, event, surv_at_horizon, horizon: float,
                groups: int = 10) -> dict:
  """Calibration of predicted survival at one horizon, by risk group.

  Patients are sorted by predicted survival (stable sort) and split into
  `groups` groups of near-equal size; within each group the observed
  survival is the Kaplan-Meier estimate at the horizon (carried flat after
  the group's last event time).

  Args:
    time, event: [n]; surv_at_horizon: float [n], predicted P(T > horizon).
    horizon: float, inside the follow-up (0, max(time)).
    groups: number of groups g.

  Returns:
    {"predicted": [g], "observed": [g], "count": [g] int, "ici": count-
    weighted mean |predicted - observed|, "horizon": horizon}.
  """
  time, event = _survival_data(time, event)
  pred = np.asarray(surv_at_horizon, np.float64)
  if pred.shape != time.shape:
    raise ValueError(f"calibration: surv_at_horizon {pred.shape} does not "
                     f"match time {time.shape}")
  if not 0 < horizon < time.max():
    raise ConfigError(f"calibration: horizon {horizon:g} must lie in the "
                      f"follow-up (0, {time.max():g})")
  if not 1 <= groups <= time.size:
    raise ConfigError(f"calibration: groups={groups} must be in "
                      f"[1, {time.size}]")
  parts = np.array_split(np.argsort(pred, kind="stable"), groups)
  predicted = np.array([pred[p].mean() for p in parts])           # [g]
  observed = np.array([step_at(*kaplan_meier(time[p], event[p]), horizon)
                       for p in parts])                           # [g]
  count = np.array([p.size for p in parts])                       # [g]
  ici = float(np.sum(count * np.abs(predicted - observed)) / count.sum())
  return {"predicted": predicted, "observed": observed, "count": count,
          "ici": ici, "horizon": float(horizon)}


def survival_metrics(train_time, train_event, time, event, risk, surv,
                     times, tau=None) -> dict[str, float]:
  """The metrics a survival training run logs on a held-out set.

  Args: as `uno_c` and `brier_scores`; tau is passed to `uno_c`.

  Returns:
    {"c_index": Harrell's C, "uno_c": Uno's C, "ibs": integrated Brier}.
  """
  return {
      "c_index": harrell_c(time, event, risk),
      "uno_c": uno_c(train_time, train_event, time, event, risk, tau),
      "ibs": integrated_brier(train_time, train_event, time, event, surv,
                              times),
  }
