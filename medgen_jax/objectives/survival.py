"""Survival losses as pure per-example functions, and their survival curves.

Conventions: `time` [b] >= 0 is the follow-up time, `event` [b] is 1 for an
observed event and 0 for right censoring, and `mask` [b] (optional, bool)
marks real examples: a masked example (padding) contributes exactly 0, is in
no risk set and gets a zero gradient, whatever its inputs hold.

Continuous time, the Cox model (DeepSurv: Katzman et al. 2018, BMC Med. Res.
Methodol. 18:24). The partial likelihood is a product over events, so
`cox_partial_nll` gives each event its own term over its risk set
R(t_i) = {j : t_j >= t_i},

    L_i = event_i * -(r_i - log sum_{j in R(t_i)} exp r_j),

and 0 to a censored example (it enters only through others' risk sets); the
sum over examples is the negative partial log-likelihood. Ties: Breslow's
approximation, or Efron's (the l-th of d tied events subtracts l/d of the
tied events' weight from its risk set).

  * Batching: the risk set is the batch. A minibatch gives a stochastic,
    case-control-like approximation of the partial likelihood (Kvamme,
    Borgan & Scheel 2019, JMLR 20(129)); one full batch of a small table
    gives the exact partial likelihood. Cost: a b x b risk-set matrix,
    fine for b up to a few thousand.
  * Privacy: one patient appears in other patients' risk sets, so example
    i's gradient depends on every j at risk and clipping per-example
    gradients does NOT bound one person's influence on the update. DP-SGD
    on the Cox loss needs a different sensitivity analysis; the discrete-
    time logistic-hazard loss below is truly per example and is the
    DP-SGD-ready choice. `deephit_rank_loss` couples examples the same way.

After training, `breslow_baseline` estimates the baseline cumulative hazard
on the full train set and `cox_survival` turns risks into survival curves.

Discrete time (Gensheimer & Narasimhan 2019, PeerJ 7:e6257, "nnet-survival";
Kvamme & Borgan 2019, arXiv:1910.06724): `make_cuts` splits [0, max time]
into K intervals, `discretize` maps each patient to one, a network predicts
one hazard logit per interval, and `logistic_hazard_nll` is the Bernoulli
likelihood of surviving each interval. `deephit_rank_loss` is DeepHit's
ranking term (Lee et al. 2018, AAAI) on that parametrisation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.errors import ConfigError, DataError

Array = jax.Array

TIES = ("breslow", "efron")


def _mask(mask: Array | None, b: int) -> Array:
  return jnp.ones((b,), bool) if mask is None else jnp.asarray(mask, bool)


# -- Cox partial likelihood -----------------------------------------------------


def cox_partial_nll(risk: Array, time: Array, event: Array,
                    mask: Array | None = None, ties: str = "breslow") -> Array:
  """Negative Cox partial log-likelihood, one term per event.

  Example i's value is 0 if it is censored (or masked), else
  -(r_i - log sum_{j: t_j >= t_i} w_ij exp r_j), where w_ij = 1 (Breslow),
  or, with Efron's ties, 1 - l_i / d_i for the d_i events tied with i at
  t_i (i the l_i-th of them in batch order, l_i = 0..d_i-1). The sum over
  the batch is the negative partial log-likelihood of the batch. Each log
  sum is computed with its own row maximum subtracted, so no exp overflows
  and no risk set underflows.

  Args:
    risk: [b] log relative hazards r (a network's output).
    time: [b] follow-up times.
    event: [b] 1 = event observed, 0 = censored.
    mask: optional [b] bool, False for padding.
    ties: "breslow" or "efron" (static).

  Returns:
    [b] per-example losses (nats).
  """
  if ties not in TIES:
    raise ConfigError(f"cox_partial_nll: ties={ties!r}; expected one of {TIES}")
  b = risk.shape[0]
  m = _mask(mask, b)
  risk = jnp.where(m, risk, 0.0)                                  # [b]
  ev = (jnp.asarray(event) > 0) & m                               # [b]
  time = jnp.asarray(time)
  eye = jnp.eye(b, dtype=bool)
  at_risk = (time[None, :] >= time[:, None]) & m[None, :] | eye   # [b(i), b(j)]
  weight = at_risk.astype(risk.dtype)
  if ties == "efron":
    tied = (time[None, :] == time[:, None]) & ev[None, :] & ev[:, None]
    d = tied.sum(1)                                               # [b]
    before = jnp.tril(tied, k=-1).sum(1)                          # [b] l_i
    frac = before / jnp.maximum(d, 1)                             # [b] l_i / d_i
    weight = weight * (1.0 - frac[:, None] * tied)
  logits = jnp.where(at_risk, risk[None, :], -jnp.inf)            # [b, b]
  shift = jax.lax.stop_gradient(logits.max(1))                    # [b]
  log_denom = jnp.log(
      (weight * jnp.exp(logits - shift[:, None])).sum(1)) + shift  # [b]
  return jnp.where(ev, log_denom - risk, 0.0)


def breslow_baseline(risk, time, event) -> tuple[np.ndarray, np.ndarray]:
  """Breslow's baseline cumulative hazard, H0(t) = sum_{t_k <= t} d_k / S_k.

  S_k = sum_{j: t_j >= t_k} exp r_j over everyone at risk at the k-th
  distinct event time t_k and d_k the events there (numpy, float64; for
  the full train set after training).

  Args:
    risk: [n] log relative hazards.
    time: [n] follow-up times.
    event: [n] 1 = event, 0 = censored.

  Returns:
    event_times [k] (sorted distinct event times) and cum_hazard [k],
    H0 at those times.
  """
  risk = np.asarray(risk, np.float64)
  time = np.asarray(time, np.float64)
  ev = np.asarray(event) > 0
  if not ev.any():
    raise DataError("breslow_baseline: no events; the baseline hazard needs "
                    "at least one observed event")
  event_times, d = np.unique(time[ev], return_counts=True)       # [k], [k]
  shift = risk.max()
  order = np.argsort(time, kind="stable")
  tail = np.cumsum(np.exp(risk[order] - shift)[::-1])[::-1]       # [n] sums t_j >= t_(i)
  first = np.searchsorted(time[order], event_times, side="left")  # [k]
  denom = tail[first] * np.exp(shift)                             # [k]
  return event_times, np.cumsum(d / denom)


def cox_survival(risk: Array, event_times: Array, cum_hazard: Array,
                 times: Array) -> Array:
  """S(t | r) = exp(-H0(t) exp r), H0 right-continuous, 0 before t_1.

  Args:
    risk: [n] log relative hazards.
    event_times: [k] sorted event times (from `breslow_baseline`).
    cum_hazard: [k] H0 at event_times.
    times: [m] times to evaluate.

  Returns:
    [n, m] survival probabilities.
  """
  h0 = jnp.pad(jnp.asarray(cum_hazard), (1, 0))                 # [k+1]
  idx = jnp.searchsorted(jnp.asarray(event_times), jnp.asarray(times),
                         side="right")                            # [m]
  return jnp.exp(-h0[idx][None, :] * jnp.exp(jnp.asarray(risk))[:, None])


# -- discrete time ----------------------------------------------------------------


def make_cuts(time, event, num_intervals: int,
              scheme: str = "quantile") -> np.ndarray:
  """Interval boundaries for discrete-time models.

  "uniform": K equal intervals of [0, max time]. "quantile": the interior
  cuts are the k/K quantiles (k = 1..K-1) of the observed event times, so
  each interval holds about as many events; duplicate cuts are dropped, so
  the result may have FEWER than K intervals (K = len(cuts) - 1).

  Args:
    time: [n] follow-up times (>= 0, finite).
    event: [n] 1 = event, 0 = censored.
    num_intervals: K >= 1.
    scheme: "quantile" or "uniform".

  Returns:
    cuts [K+1] increasing numpy float64, cuts[0] = 0, cuts[-1] = max time.
  """
  time = np.asarray(time, np.float64)
  ev = np.asarray(event) > 0
  if num_intervals < 1:
    raise ConfigError(f"make_cuts: num_intervals={num_intervals}; expected >= 1")
  if not (time.size and np.all(np.isfinite(time)) and np.all(time >= 0)
          and time.max() > 0):
    raise DataError("make_cuts: times must be finite, >= 0 and not all 0")
  t_max = time.max()
  if scheme == "uniform":
    return np.linspace(0.0, t_max, num_intervals + 1)
  if scheme != "quantile":
    raise ConfigError(f"make_cuts: scheme={scheme!r}; expected 'quantile' or "
                      "'uniform'")
  if not ev.any():
    raise DataError("make_cuts: quantile cuts need an event; use 'uniform'")
  levels = np.arange(1, num_intervals) / num_intervals
  inner = np.quantile(time[ev], levels) if levels.size else np.zeros(0)
  inner = inner[(inner > 0) & (inner < t_max)]
  return np.unique(np.concatenate([[0.0], inner, [t_max]]))


class Discretized(NamedTuple):
  """Discrete-time outcomes, each int32 numpy [b]."""
  interval: np.ndarray        # int32: k with t in (cuts[k], cuts[k+1]]
  event: np.ndarray           # int32: 1 = event in that interval
  survived_last: np.ndarray   # int32: censored at/after the interval's midpoint


def discretize(time, event, cuts) -> Discretized:
  """Maps times to intervals (nnet-survival's censoring convention).

  Interval k holds t in (cuts[k], cuts[k+1]]; t = 0 goes to interval 0,
  t beyond the last cut to the last one. A patient censored in interval k
  survived the intervals before k, and interval k too (survived_last = 1)
  when censored at or after its midpoint; otherwise interval k does not
  enter its likelihood (Gensheimer & Narasimhan 2019).

  Args:
    time: [b] follow-up times.
    event: [b] 1 = event, 0 = censored.
    cuts: [K+1] boundaries from `make_cuts`.

  Returns:
    Discretized(interval [b], event [b], survived_last [b]), int32 numpy.
  """
  time = np.asarray(time, np.float64)
  ev = (np.asarray(event) > 0).astype(np.int32)
  cuts = np.asarray(cuts, np.float64)
  k = np.clip(np.searchsorted(cuts, time, side="left") - 1, 0, len(cuts) - 2)
  mid = 0.5 * (cuts[k] + cuts[k + 1])
  survived = ((1 - ev) * (time >= mid)).astype(np.int32)
  return Discretized(k.astype(np.int32), ev, survived)


def logistic_hazard_nll(logits: Array, interval: Array, event: Array,
                        survived_last: Array,
                        mask: Array | None = None) -> Array:
  """Discrete-time (logistic hazard) negative log-likelihood per example.

  With h_j = sigmoid(logits_j) the probability of the event in interval j
  given survival to its start,

    L_i = -sum_{j < k_i} log(1 - h_j)
          - (event_i ? log h_k : survived_last_i * log(1 - h_k)),

  with log h = log_sigmoid(x), log(1 - h) = log_sigmoid(-x). Each value
  depends only on its own example: truly per example, so per-example
  clipping bounds a patient's influence (DP-SGD-ready).

  Args:
    logits: [b, K] hazard logits.
    interval: [b] int interval index k_i.
    event: [b] 1 = event in interval k_i.
    survived_last: [b] 1 = censored at/after interval k_i's midpoint.
    mask: optional [b] bool, False for padding.

  Returns:
    [b] per-example losses (nats).
  """
  b, num = logits.shape
  m = _mask(mask, b)
  logits = jnp.where(m[:, None], logits, 0.0)
  log_h = jax.nn.log_sigmoid(logits)                              # [b, K]
  log_s = jax.nn.log_sigmoid(-logits)                             # [b, K]
  ks, k = jnp.arange(num)[None, :], jnp.asarray(interval)[:, None]
  before, at = ks < k, ks == k                                    # [b, K]
  ev = jnp.asarray(event, logits.dtype)[:, None]
  alive = jnp.asarray(survived_last, logits.dtype)[:, None]
  last = jnp.where(at, ev * log_h + (1.0 - ev) * alive * log_s, 0.0)
  nll = -(jnp.where(before, log_s, 0.0) + last).sum(1)
  return jnp.where(m, nll, 0.0)


def _pick(values: Array, one_hot: Array) -> Array:
  """values [n, K] at one column per query, one_hot [m, K] -> [n, m] (a
  full-precision matmul: cheaper to compile than a gather)."""
  return jnp.einsum("nk,mk->nm", values, one_hot,
                    precision=jax.lax.Precision.HIGHEST)


def hazard_survival(logits: Array) -> Array:
  """S at the end of each interval: S_k = prod_{j <= k} (1 - h_j).

  Args:
    logits: [n, K] hazard logits.

  Returns:
    [n, K] survival at cuts[1:].
  """
  return jnp.exp(jnp.cumsum(jax.nn.log_sigmoid(-logits), axis=-1))


def interpolate_survival(surv: Array, cuts: Array, times: Array) -> Array:
  """Survival at any time, with a constant hazard within each interval.

  log S is linear in t between cuts (S(0) = 1); after the last cut S stays
  at its last value. Survival values are floored at the float's tiny to
  keep their logs finite.

  Args:
    surv: [n, K] survival at cuts[1:] (from `hazard_survival`).
    cuts: [K+1] boundaries.
    times: [m] times to evaluate.

  Returns:
    [n, m] survival probabilities.
  """
  surv = jnp.asarray(surv)
  cuts = jnp.asarray(cuts, surv.dtype)
  times = jnp.asarray(times, surv.dtype)
  log_s = jnp.log(jnp.maximum(surv, jnp.finfo(surv.dtype).tiny))   # [n, K]
  # Interval of each time (as in `discretize`), one-hot: [m, K].
  k = (cuts[None, 1:-1] < times[:, None]).sum(1)
  at = jax.nn.one_hot(k, surv.shape[1], dtype=surv.dtype)
  lo, hi = (at * cuts[:-1]).sum(1), (at * cuts[1:]).sum(1)         # [m]
  frac = jnp.clip((times - lo) / (hi - lo), 0.0, 1.0)              # [m]
  end = _pick(log_s, at)                                           # [n, m]
  start = _pick(jnp.pad(log_s[:, :-1], ((0, 0), (1, 0))), at)      # [n, m]
  return jnp.exp(start + frac * (end - start))


def deephit_rank_loss(logits: Array, interval: Array, event: Array,
                      sigma: float = 0.1, mask: Array | None = None) -> Array:
  """DeepHit's ranking loss (Lee et al. 2018, AAAI, eq. 3) on hazard logits.

  With F_i(k) = 1 - S_i(cuts[k+1]) the probability that i's event has
  happened by the end of interval k, each event i is compared with every j
  known to outlive it (interval_j > interval_i, or the same interval with j
  censored):

    L_i = (1/n) sum_j exp(-(F_i(k_i) - F_j(k_i)) / sigma),

  0 for a censored (or masked) i; n is the number of real examples (b
  without a mask, so padding changes nothing). The batch's mean is then
  about (1/b^2) times the sum over comparable pairs, whose scale does not
  grow with b; it is deliberately not the mean over comparable pairs.
  Like the Cox loss, j enters i's value: the examples are coupled and
  per-example clipping does not bound one patient's influence.

  Args:
    logits: [b, K] hazard logits.
    interval: [b] int interval index.
    event: [b] 1 = event in that interval.
    sigma: the ranking temperature.
    mask: optional [b] bool, False for padding.

  Returns:
    [b] per-example losses.
  """
  b = logits.shape[0]
  m = _mask(mask, b)
  logits = jnp.where(m[:, None], logits, 0.0)
  cdf = 1.0 - hazard_survival(logits)                             # [b, K]
  k = jnp.where(m, jnp.asarray(interval), 0)
  ev = (jnp.asarray(event) > 0) & m
  at = jax.nn.one_hot(k, logits.shape[1], dtype=cdf.dtype)        # [b, K]
  f_j = _pick(cdf, at).T                                          # [b(i), b(j)] F_j(k_i)
  f_i = (cdf * at).sum(1)                                         # [b] F_i(k_i)
  later = (k[None, :] > k[:, None]) | ((k[None, :] == k[:, None]) & ~ev[None, :])
  pair = later & ev[:, None] & m[None, :]                         # [b, b]
  terms = jnp.exp(-(f_i[:, None] - f_j) / sigma)
  return jnp.where(pair, terms, 0.0).sum(1) / jnp.maximum(m.sum(), 1)
