"""Classical baselines of sleep series, fitted on a train split.

The recurrent models (`medgen train rnn` on hypnogram: / actigraphy: data)
are compared with these on the same held-out windows, in nats per scored
epoch (benchmarks/sleep_quality.py):

* `MarkovChain`: first-order Markov chain of sleep stages, homogeneous
  (one transition matrix; Zung et al. 1965 and Kim et al. 2009 modelled
  hypnograms this way) or time-inhomogeneous (one matrix per bin of time
  since lights-off, shrunk towards the homogeneous matrix where a bin has
  few transitions).
* `TimeOfDayCounts`: activity counts as independent negative-binomial (or
  zero-inflated NB) draws whose parameters depend only on the hour of the
  day, fitted by maximum likelihood per bin.

Both take the arrays of a sleep dataset (data/sleep.py): x [n, T, 1] (stage
codes or counts; 0 at masked steps), mask [n, T] and t0 [n] (seconds: since
lights-off, or since midnight), and score masked steps as absent: a Markov
chain predicts across a gap by multiplying transition matrices (forward
filtering), so its per-epoch NLL covers exactly the steps the models score.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize, special, stats

DAY_SECONDS = 86400.0


def _bins(t0: np.ndarray, steps: int, epoch: float, bin_seconds: float,
          num_bins: int, period: float | None = None) -> np.ndarray:
  """int [n, steps]: the time bin of every step."""
  t = t0[:, None] + np.arange(steps)[None, :] * epoch
  if period is not None:
    t = np.mod(t, period)
  return np.clip((t // bin_seconds).astype(np.int64), 0, num_bins - 1)


def _as_states(x: np.ndarray) -> np.ndarray:
  return np.rint(np.asarray(x)[..., 0]).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class MarkovChain:
  """p(s_0) p(s_1 | s_0) ... with transitions per time bin.

  Attributes:
    initial: [B, K] stage distribution of a window's first epoch per bin.
    transitions: [B, K, K], row i = p(next | current i), per bin (B = 1:
      homogeneous).
    epoch_seconds: seconds per step.
    bin_seconds: width of a time bin (inf when homogeneous).
  """

  initial: np.ndarray
  transitions: np.ndarray
  epoch_seconds: float
  bin_seconds: float

  @classmethod
  def fit(cls, x, mask, t0, epoch_seconds: float, num_states: int,
          bin_seconds: float | None = None, alpha: float = 0.5,
          prior_weight: float = 10.0) -> "MarkovChain":
    """Maximum likelihood with add-`alpha` smoothing.

    With `bin_seconds`, each bin's counts are shrunk towards the
    homogeneous chain with `prior_weight` pseudo-transitions per row.
    """
    s, m = _as_states(x), np.asarray(mask, bool)
    k = num_states
    t0 = np.asarray(t0, np.float64)
    pair = m[:, 1:] & m[:, :-1]
    counts = np.full((k, k), alpha)
    np.add.at(counts, (s[:, :-1][pair], s[:, 1:][pair]), 1.0)
    homog = counts / counts.sum(1, keepdims=True)
    first = np.full(k, alpha)
    np.add.at(first, s[:, 0][m[:, 0]], 1.0)
    if bin_seconds is None:
      return cls((first / first.sum())[None], homog[None], epoch_seconds,
                 np.inf)
    steps = s.shape[1]
    span = float(t0.max()) + steps * epoch_seconds
    nb = max(int(np.ceil(span / bin_seconds)), 1)
    b = _bins(t0, steps, epoch_seconds, bin_seconds, nb)
    trans = np.repeat((prior_weight * homog)[None], nb, 0)
    np.add.at(trans, (b[:, 1:][pair], s[:, :-1][pair], s[:, 1:][pair]), 1.0)
    marg = np.full((nb, k), alpha)
    np.add.at(marg, (b[m], s[m]), 1.0)
    return cls(marg / marg.sum(1, keepdims=True),
               trans / trans.sum(2, keepdims=True), epoch_seconds,
               float(bin_seconds))

  def _bin_of(self, t0, steps):
    nb = self.transitions.shape[0]
    if nb == 1:
      return np.zeros((t0.shape[0], steps), np.int64)
    return _bins(t0, steps, self.epoch_seconds, self.bin_seconds, nb)

  def nll(self, x, mask, t0) -> tuple[np.ndarray, np.ndarray]:
    """(summed NLL [n] in nats, scored steps [n]) by forward filtering:
    across masked steps the belief is propagated, not reset."""
    s, m = _as_states(x), np.asarray(mask, bool)
    n, steps = s.shape
    b = self._bin_of(np.asarray(t0, np.float64), steps)
    k = self.transitions.shape[-1]
    rows = np.arange(n)
    total = np.zeros(n)
    belief = None
    for t in range(steps):
      if t == 0:
        pred = self.initial[np.minimum(b[:, 0], self.initial.shape[0] - 1)]
      else:
        pred = np.einsum("ni,nij->nj", belief, self.transitions[b[:, t]])
      obs = m[:, t]
      p = pred[rows, np.clip(s[:, t], 0, k - 1)]
      total -= np.where(obs, np.log(np.maximum(p, 1e-300)), 0.0)
      hot = np.eye(k)[np.clip(s[:, t], 0, k - 1)]
      belief = np.where(obs[:, None], hot, pred)
    return total, m.sum(1)

  def sample(self, rng: np.random.Generator, n: int, steps: int,
             t0: np.ndarray) -> np.ndarray:
    """Stage codes [n, steps] of n series starting at t0 [n]."""
    b = self._bin_of(np.asarray(t0, np.float64), steps)
    out = np.zeros((n, steps), np.int64)
    cdf = np.cumsum(self.initial[np.minimum(b[:, 0],
                                            self.initial.shape[0] - 1)], 1)
    out[:, 0] = (rng.random((n, 1)) > cdf).sum(1)
    for t in range(1, steps):
      cdf = np.cumsum(self.transitions[b[:, t], out[:, t - 1]], 1)
      out[:, t] = (rng.random((n, 1)) > cdf).sum(1)
    return np.minimum(out, self.transitions.shape[-1] - 1)


def _nb_logpmf(x, mu, theta):
  """log NB(x; mean mu, inverse dispersion theta), scipy's parameters."""
  return stats.nbinom.logpmf(x, theta, theta / (theta + mu))


def _zinb_logpmf(x, mu, theta, pi):
  nb = _nb_logpmf(x, mu, theta)
  zero = np.log(pi + (1 - pi) * np.exp(_nb_logpmf(0.0, mu, theta)))
  return np.where(x == 0, zero, np.log1p(-pi) + nb)


def _fit_bin(y: np.ndarray, zero_inflated: bool) -> tuple[float, float, float]:
  """(mu, theta, pi) by maximum likelihood for the counts y of one bin."""
  mean = max(float(y.mean()), 1e-3) if y.size else 1.0
  if y.size < 2:
    return mean, 1.0, 0.0
  if not zero_inflated:   # the NB's MLE of mu is the sample mean
    res = optimize.minimize_scalar(
        lambda lt: -_nb_logpmf(y, mean, np.exp(lt)).sum(),
        bounds=(-8.0, 12.0), method="bounded")
    return mean, float(np.exp(res.x)), 0.0
  zeros = float((y == 0).mean())

  def neg(p):
    mu, th, pi = np.exp(p[0]), np.exp(p[1]), special.expit(p[2])
    return -_zinb_logpmf(y, mu, th, pi).sum()

  start = np.array([np.log(mean), 0.0, special.logit(min(max(zeros, 0.01),
                                                          0.99))])
  res = optimize.minimize(neg, start, method="L-BFGS-B",
                          bounds=[(-8, 12), (-8, 12), (-12, 12)])
  return (float(np.exp(res.x[0])), float(np.exp(res.x[1])),
          float(special.expit(res.x[2])))


@dataclasses.dataclass(frozen=True)
class TimeOfDayCounts:
  """Counts ~ NB(mu_h, theta_h) (or ZINB with pi_h) for clock bin h.

  Attributes:
    mu, theta, pi: [B] per bin of the day (pi all 0 for the NB).
    epoch_seconds: seconds per step.
    bin_seconds: bin width (3600: hours of the day).
  """

  mu: np.ndarray
  theta: np.ndarray
  pi: np.ndarray
  epoch_seconds: float
  bin_seconds: float

  @classmethod
  def fit(cls, x, mask, t0, epoch_seconds: float, bin_seconds: float = 3600.0,
          zero_inflated: bool = False) -> "TimeOfDayCounts":
    y, m = np.asarray(x, np.float64)[..., 0], np.asarray(mask, bool)
    nb = int(round(DAY_SECONDS / bin_seconds))
    b = _bins(np.asarray(t0, np.float64), y.shape[1], epoch_seconds,
              bin_seconds, nb, DAY_SECONDS)
    params = np.array([_fit_bin(np.rint(y[m & (b == h)]), zero_inflated)
                       for h in range(nb)])
    return cls(params[:, 0], params[:, 1], params[:, 2], epoch_seconds,
               bin_seconds)

  def nll(self, x, mask, t0) -> tuple[np.ndarray, np.ndarray]:
    """(summed NLL [n] in nats, scored steps [n])."""
    y, m = np.rint(np.asarray(x, np.float64)[..., 0]), np.asarray(mask, bool)
    b = _bins(np.asarray(t0, np.float64), y.shape[1], self.epoch_seconds,
              self.bin_seconds, self.mu.size, DAY_SECONDS)
    logp = _zinb_logpmf(y, self.mu[b], self.theta[b], self.pi[b])
    return -np.where(m, logp, 0.0).sum(1), m.sum(1)

  def sample(self, rng: np.random.Generator, n: int, steps: int,
             t0: np.ndarray) -> np.ndarray:
    """Counts [n, steps] (gamma-Poisson, then the extra zeros)."""
    b = _bins(np.asarray(t0, np.float64), steps, self.epoch_seconds,
              self.bin_seconds, self.mu.size, DAY_SECONDS)
    theta, mu = self.theta[b], self.mu[b]
    rate = rng.gamma(theta, mu / theta)
    counts = rng.poisson(rate).astype(np.float64)
    return np.where(rng.random(counts.shape) < self.pi[b], 0.0, counts)
