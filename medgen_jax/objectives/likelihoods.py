"""Observation models p(x | decoder outputs) for the VAE family.

Two layers:

* elementwise log-densities (`bernoulli_log_prob`, `gaussian_log_prob`,
  `discretized_logistic_log_prob`, `discretized_gaussian_log_prob`,
  `discretized_laplace_log_prob`, `discretized_student_t_log_prob`,
  `nb_log_prob`, `zinb_log_prob`): the value for every entry of x, same
  (broadcast) shape as x, no reduction;
* the `LIKELIHOODS` registry of `Likelihood`s, whose `log_prob(x, params)`
  sums over every non-batch axis and returns one value per example [batch].

Parameter conventions (the names of the decoder outputs in `params`, each
shaped like x; a per-feature parameter such as NB's theta [genes] may be given
with fewer leading axes and is broadcast against x):

* "bernoulli": "logits", the pre-sigmoid log-odds of x = 1.
* "gaussian": "mean", "log_scale" (log of the standard deviation).
* "discretized_logistic", "discretized_gaussian", "discretized_laplace",
  "discretized_student_t": "mean", "log_scale" (log of the logistic scale
  s, of the Normal's standard deviation, of the Laplace scale b, resp. of
  the Student-t scale), for x on the grid of 256 values in [-1, 1] (uint8
  images u mapped to 2u/255 - 1). The Laplace and Student-t models have
  heavier tails than the logistic: a pixel far from the decoder's mean (an
  outlier, impulse noise) costs log-linearly resp. logarithmically in the
  distance instead of linearly / quadratically, so noisy pixels pull the
  fit less. The Student-t's degrees of freedom are fixed per model
  (`discretized_student_t(df)`; the registry's entry has df = 3).
* "nb": "mu" (mean) and "theta" (inverse dispersion), both positive and
  already transformed by the caller (e.g. softplus or exp of a network
  output); variance mu + mu^2 / theta.
* "zinb": "mu", "theta" as for "nb", and "pi_logits", the logits of the
  probability pi of an extra zero (dropout).

`Likelihood.data` names what x must be: "binary" ({0, 1}; [0, 1]
probabilities are accepted by the Bernoulli cross-entropy form),
"unit_interval" (the [-1, 1] grid of the discretised models), "real" or
"counts" (non-negative integers stored as floats).

Every function is pure and jit-able; nothing here reduces over the batch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaln, log_ndtr, ndtr, xlogy

from medgen_jax.registry import Registry

Array = jax.Array
Params = Mapping[str, Array]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# Above this theta the NB's lgamma(x + theta) - lgamma(theta) is taken from
# Stirling's series, where float32 lgamma differences lose digits (lgamma(1e4)
# is ~8e4 with an ulp of ~8e-3).
_STIRLING_THETA = 10.0

_LOG_HALF = math.log(0.5)

# The Student-t tail P(T >= t) = I_x(df/2, 1/2) / 2, x = df / (df + t^2), is
# taken from the hypergeometric series of I_x for x <= this (|t| >=
# sqrt(df / 3)), where betainc would underflow in float32; the series' terms
# shrink by at least x per term, so _T_SERIES_TERMS of them leave < 1e-8.
_T_SERIES_MAX_X = 0.75
_T_SERIES_TERMS = 64
# Above this df the betainc branch (|t| < sqrt(df / 3)) can underflow in
# float32; such a t is a Gaussian for practical purposes (discretized_gaussian).
MAX_STUDENT_T_DF = 200.0
DEFAULT_STUDENT_T_DF = 3.0
# Student-t interior bins with d = w (df + 1) / sqrt(df + m^2) below this
# (w the standardised width, m the midpoint) are integrated by quadrature:
# there a difference of two float32 cdf values would lose digits.
_T_QUADRATURE_D = 0.5
_GAUSS_LEGENDRE_5 = ((0.0, 0.5688888888888889),
                     (-0.5384693101056831, 0.4786286704993665),
                     (0.5384693101056831, 0.4786286704993665),
                     (-0.9061798459386640, 0.2369268850561891),
                     (0.9061798459386640, 0.2369268850561891))


# ----------------------------------------------------------------------------
# Helpers.


def _log1mexp_of_log(log_d: Array) -> Array:
  """log(1 - exp(-d)) for d = exp(log_d) > 0, stable for every d.

  For tiny d (where exp(log_d) may even underflow) it uses
  log(1 - e^-d) = log d - d/2 + O(d^2); otherwise the two forms of
  Maechler (2012), "Accurately computing log(1 - exp(-|a|))".
  """
  small = log_d < -10.0  # d < 4.5e-5: the series is exact to ~1e-10
  d = jnp.exp(jnp.where(small, 0.0, log_d))  # safe operand for the other forms
  exact = jnp.where(d < math.log(2.0), jnp.log(-jnp.expm1(-d)),
                    jnp.log1p(-jnp.exp(-d)))
  return jnp.where(small, log_d - 0.5 * jnp.exp(log_d), exact)


def _log1mexp(t: Array) -> Array:
  """log(1 - exp(t)) for t <= 0 (Maechler 2012); t must be < 0 to be finite."""
  return jnp.where(t > -math.log(2.0), jnp.log(-jnp.expm1(t)),
                   jnp.log1p(-jnp.exp(t)))


def _sum_non_batch(values: Array) -> Array:
  """[batch, ...] -> [batch]: sums over every axis but the first."""
  return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def _shape(*arrays: Array) -> tuple[int, ...]:
  return jnp.broadcast_shapes(*(jnp.shape(a) for a in arrays))


# ----------------------------------------------------------------------------
# Elementwise log-densities.


def bernoulli_log_prob(x: Array, logits: Array) -> Array:
  """log Bernoulli(x; sigmoid(logits)) = x * logits - softplus(logits).

  The Bernoulli decoder of Kingma & Welling 2014, "Auto-Encoding Variational
  Bayes", appendix C.1. For x in {0, 1} this is the exact log-probability.
  For x in [0, 1] (grey levels read as probabilities) it is the negative
  binary cross-entropy x log p + (1 - x) log(1 - p), which is NOT a
  normalised likelihood of x (the continuous Bernoulli of Loaiza-Ganem &
  Cunningham 2019 would add the missing log-normaliser).

  Args:
    x: [...] values in {0, 1} (or [0, 1]).
    logits: [...] log-odds, broadcastable against x.

  Returns:
    [...] elementwise log-probabilities.
  """
  return x * logits - jax.nn.softplus(logits)


def gaussian_log_prob(x: Array, mean: Array, log_scale: Array) -> Array:
  """log Normal(x; mean, exp(log_scale)^2), elementwise.

  The Gaussian decoder of Kingma & Welling 2014, appendix C.2, with the
  standard deviation parameterised by its logarithm (no division by a
  possibly-zero scale: the standardised residual is (x - mean) *
  exp(-log_scale)).

  Args:
    x: [...] real values.
    mean: [...] means.
    log_scale: [...] log standard deviations.

  Returns:
    [...] elementwise log-densities.
  """
  z = (x - mean) * jnp.exp(-log_scale)
  return -0.5 * jnp.square(z) - log_scale - _HALF_LOG_2PI


def _bin_edges(x: Array, mean: Array, log_scale: Array, num_bins: int):
  """Standardised bin edges and the edge-bin masks shared by both models."""
  if num_bins < 2:
    raise ValueError(f"num_bins must be >= 2, got {num_bins}")
  half = 1.0 / (num_bins - 1)  # half the spacing of the grid on [-1, 1]
  inv_scale = jnp.exp(-log_scale)
  centred = x - mean
  upper = (centred + half) * inv_scale  # standardised right edge of the bin
  lower = (centred - half) * inv_scale  # standardised left edge of the bin
  mid = centred * inv_scale
  log_width = math.log(2.0 * half) - log_scale  # log of (upper - lower)
  first = x < -1.0 + half  # lowest bin: takes the whole left tail
  last = x > 1.0 - half  # highest bin: takes the whole right tail
  return upper, lower, mid, log_width, first, last


def discretized_logistic_log_prob(x: Array, mean: Array, log_scale: Array,
                                  num_bins: int = 256) -> Array:
  """log P(x) of a logistic discretised to `num_bins` bins on [-1, 1].

  Salimans et al. 2017, "PixelCNN++", eq. 2 (also Kingma et al. 2016, IAF):
  x lies on the grid -1, -1 + 2h, ..., 1 with h = 1 / (num_bins - 1) (uint8
  images u as 2u/255 - 1); its probability is the logistic mass of
  [x - h, x + h], the lowest bin taking (-inf, -1 + h] and the highest
  [1 - h, inf). The probabilities of the num_bins grid values sum to 1.

  Numerics: with a = (x + h - mean) / s > b = (x - h - mean) / s,
    sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(-(a - b))),
  so the interior log-mass is -softplus(-a) - softplus(b) + log1mexp(a - b),
  computed in log space with a - b = 2h / s taken from log_scale directly.
  This is exact everywhere (far tails, tiny and huge scales), so the
  midpoint-density fallback of PixelCNN++ is never needed.

  Args:
    x: [...] values on the grid in [-1, 1].
    mean: [...] logistic locations.
    log_scale: [...] log of the logistic scales s.
    num_bins: number of grid values (256 for 8-bit data).

  Returns:
    [...] elementwise log-probabilities.
  """
  upper, lower, _, log_width, first, last = _bin_edges(x, mean, log_scale,
                                                       num_bins)
  log_cdf_upper = -jax.nn.softplus(-upper)  # log sigmoid(upper)
  log_sf_lower = -jax.nn.softplus(lower)  # log (1 - sigmoid(lower))
  interior = log_cdf_upper + log_sf_lower + _log1mexp_of_log(log_width)
  return jnp.where(first, log_cdf_upper,
                   jnp.where(last, log_sf_lower, interior))


def discretized_gaussian_log_prob(x: Array, mean: Array, log_scale: Array,
                                  num_bins: int = 256) -> Array:
  """log P(x) of a Normal discretised to `num_bins` bins on [-1, 1].

  The decoder of Ho et al. 2020, "Denoising Diffusion Probabilistic Models",
  eq. 13, with the same grid and edge bins as `discretized_logistic_log_prob`
  and the Normal cdf Phi in place of the sigmoid.

  Numerics: edge bins use log_ndtr (stable in both tails). An interior bin
  [b, a] (standardised) is computed on the side of the mean where both cdf
  values are small, log Phi(a) + log1mexp(log Phi(b) - log Phi(a)) (mirrored
  as Phi(-b) - Phi(-a) right of the mean), which never subtracts two numbers
  near 1. Where the bin is so narrow relative to the scale that this
  difference cancels (d = (a - b) * max(1, |m|) < 0.05, m the standardised
  midpoint), the midpoint rule with its second-order correction is used:
  log phi(m) + log d + log1p((m^2 - 1) d^2 / 24), accurate to O((m d)^4).

  Args:
    x: [...] values on the grid in [-1, 1].
    mean: [...] Normal means.
    log_scale: [...] log standard deviations.
    num_bins: number of grid values (256 for 8-bit data).

  Returns:
    [...] elementwise log-probabilities.
  """
  upper, lower, mid, log_width, first, last = _bin_edges(x, mean, log_scale,
                                                         num_bins)
  log_cdf_upper = log_ndtr(upper)  # log P(Y <= upper)
  log_sf_lower = log_ndtr(-lower)  # log P(Y >= lower)

  # Exact interior mass on the small-tail side of the mean.
  right = mid > 0.0
  hi = jnp.where(right, -lower, upper)
  lo = jnp.where(right, -upper, lower)
  log_hi = log_ndtr(hi)
  width = jnp.exp(log_width)
  narrow = width * jnp.maximum(1.0, jnp.abs(mid)) < 0.05
  gap = jnp.where(narrow, -1.0, log_ndtr(lo) - log_hi)  # safe when narrow
  exact = log_hi + _log1mexp(jnp.minimum(gap, -1e-30))

  # Midpoint rule with its second-order term for narrow bins.
  m2 = jnp.square(mid)
  correction = jnp.where(narrow, (m2 - 1.0) * jnp.square(width) / 24.0, 0.0)
  midpoint = -0.5 * m2 - _HALF_LOG_2PI + log_width + jnp.log1p(correction)

  interior = jnp.where(narrow, midpoint, exact)
  return jnp.where(first, log_cdf_upper,
                   jnp.where(last, log_sf_lower, interior))


def _laplace_log_sf(t: Array) -> Array:
  """log P(Y >= t) of the standard Laplace: log(e^-t / 2) for t >= 0, else
  log1p(-e^t / 2); finite with finite gradients for every t."""
  return jnp.where(t >= 0.0, _LOG_HALF - t,
                   jnp.log1p(-0.5 * jnp.exp(jnp.minimum(t, 0.0))))


def discretized_laplace_log_prob(x: Array, mean: Array, log_scale: Array,
                                 num_bins: int = 256) -> Array:
  """log P(x) of a Laplace discretised to `num_bins` bins on [-1, 1].

  The grid and edge bins of `discretized_logistic_log_prob` (Salimans et al.
  2017, eq. 2) with the Laplace cdf F(t) = e^t / 2 (t < 0), 1 - e^-t / 2
  (t >= 0) of the standardised t = (x - mean) / b. Its exponential tails
  make the cost of an outlying pixel grow linearly in its distance from the
  mean (the L1 loss), not quadratically as for a Gaussian: a robust
  observation model for images with impulse noise.

  Numerics (exact everywhere, no midpoint rule): the interior bin [lo, hi]
  (standardised) is mirrored to the left of the mean (midpoint <= 0). If it
  lies wholly left of 0, its mass is e^hi (1 - e^-(hi - lo)) / 2, taken in
  log space with hi - lo = 2h / b from log_scale; if it straddles 0, it is
  (-expm1(-hi) - expm1(lo)) / 2, a sum of two non-negative terms.

  Args:
    x: [...] values on the grid in [-1, 1].
    mean: [...] Laplace locations.
    log_scale: [...] log of the Laplace scales b.
    num_bins: number of grid values (256 for 8-bit data).

  Returns:
    [...] elementwise log-probabilities.
  """
  upper, lower, mid, log_width, first, last = _bin_edges(x, mean, log_scale,
                                                         num_bins)
  log_cdf_upper = _laplace_log_sf(-upper)  # log P(Y <= upper)
  log_sf_lower = _laplace_log_sf(lower)  # log P(Y >= lower)

  right = mid > 0.0  # mirror: P(lower <= Y <= upper) = P(-upper <= Y <= -lower)
  hi = jnp.where(right, -lower, upper)
  lo = jnp.where(right, -upper, lower)
  left_only = _LOG_HALF + hi + _log1mexp_of_log(log_width)  # valid for hi <= 0
  straddle = hi > 0.0  # then lo <= 0, as the midpoint is <= 0
  hi_s = jnp.where(straddle, hi, 1.0)  # safe operands for the unused branch
  lo_s = jnp.where(straddle, jnp.minimum(lo, 0.0), -1.0)
  across = _LOG_HALF + jnp.log(-jnp.expm1(-hi_s) - jnp.expm1(lo_s))
  interior = jnp.where(straddle, across, left_only)
  return jnp.where(first, log_cdf_upper,
                   jnp.where(last, log_sf_lower, interior))


def _student_t_log_far_tail(t: Array, df: float) -> Array:
  """log P(T >= t) for t^2 >= df / 3, from the series of the incomplete beta.

  With x = df / (df + t^2) <= 3/4, a = df / 2 and b = 1 / 2,
    P(T >= t) = I_x(a, b) / 2,
    I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) * 2F1(a + b, 1; a + 1; x)
  (Abramowitz & Stegun 26.5.23 with 15.3.3), taken in log space with
  log x = log df - 2 log t - log1p(df / t^2), so nothing underflows or
  overflows however far out t is (float32 betainc is 0 beyond x^a < 1e-38).
  The series' terms shrink by at least x per term: _T_SERIES_TERMS terms
  leave a relative error < 1e-8.
  """
  a, b = 0.5 * df, 0.5
  log_1mx = -jnp.log1p(df / jnp.square(t))  # log(1 - x) = log(t^2 / (df + t^2))
  log_x = math.log(df) - 2.0 * jnp.log(t) + log_1mx
  # 2F1(a + b, 1; a + 1; x) = sum_n c_n x^n,
  # c_{n+1} = c_n (a + b + n) / (a + 1 + n).
  coeffs = np.cumprod([1.0] + [(a + b + n) / (a + 1.0 + n)
                               for n in range(_T_SERIES_TERMS - 1)])
  x = jnp.exp(log_x)
  hyp = jnp.zeros_like(x)
  for c in coeffs[::-1]:  # Horner
    hyp = hyp * x + float(c)
  return (_LOG_HALF + a * log_x + b * log_1mx - math.log(a)
          - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
          + jnp.log(hyp))


def student_t_log_sf(t: Array, df: float) -> Array:
  """log P(T >= t) for T a standard Student-t with `df` degrees of freedom.

  Matches scipy.stats.t(df).logsf, finite with finite gradients for every
  finite t. With y = t^2 / (df + t^2) = 1 - x, four regions:
    * |t| < 1e-3: the odd Taylor series of the cdf about 0,
      P(T >= t) = 1/2 - f(0) (t - (df + 1) / (6 df) t^3) + O(t^5);
    * y < 0.01: 1/2 - sign(t) I_y(1/2, df/2) / 2 (y is exact where
      x = 1 - y would round to 1);
    * x > 3/4: P(T >= |t|) = I_x(df/2, 1/2) / 2 (jax betainc);
    * x <= 3/4: the series of `_student_t_log_far_tail`;
  a tail P(T >= |t|) becomes P(T >= t) = 1 - tail for t < 0 via log1mexp.
  """
  a = 0.5 * df
  y_near = 0.01
  abs_t = jnp.abs(t)
  t2 = jnp.square(t)
  center = abs_t < 1e-3
  far = t2 >= df * (1.0 - _T_SERIES_MAX_X) / _T_SERIES_MAX_X
  near = ~center & (t2 < df * y_near / (1.0 - y_near))
  mid = ~center & ~near & ~far
  # Safe operands (each branch sees a t inside its region).
  tc = jnp.where(center, t, 0.0)
  tn = jnp.where(near, t, math.sqrt(df * 0.005))
  tm = jnp.where(mid, abs_t, math.sqrt(df * 0.2))
  tf = jnp.where(far, abs_t, 2.0 * math.sqrt(df))

  f0 = math.exp(math.lgamma(a + 0.5) - math.lgamma(a)
                - 0.5 * math.log(df * math.pi))  # density at 0
  log_center = jnp.log(0.5 - f0 * (tc - (df + 1.0) / (6.0 * df) * tc ** 3))
  yn = jnp.square(tn) / (df + jnp.square(tn))
  log_near = jnp.log(0.5 - 0.5 * jnp.sign(tn) * betainc(0.5, a, yn))
  xm = df / (df + jnp.square(tm))
  log_tail = jnp.where(far, _student_t_log_far_tail(tf, df),
                       _LOG_HALF + jnp.log(betainc(a, 0.5, xm)))
  log_tail = jnp.minimum(log_tail, _LOG_HALF)  # a tail is <= 1/2
  log_sf = jnp.where(t >= 0.0, log_tail, _log1mexp(log_tail))
  return jnp.where(center, log_center, jnp.where(near, log_near, log_sf))


def discretized_student_t_log_prob(x: Array, mean: Array, log_scale: Array,
                                   df: float = DEFAULT_STUDENT_T_DF,
                                   num_bins: int = 256) -> Array:
  """log P(x) of a Student-t discretised to `num_bins` bins on [-1, 1].

  The grid and edge bins of `discretized_logistic_log_prob` (Salimans et al.
  2017, eq. 2) with the cdf of a location-scale Student-t with `df` degrees
  of freedom, whose polynomial tails make an outlying pixel cost only
  (df + 1) log|t| (the robust observation model of Lange, Little & Taylor
  1989, "Robust statistical modeling using the t distribution"; as a VAE
  decoder e.g. Takahashi et al. 2018, "Student-t variational autoencoder").
  The cdf is the regularised incomplete beta function,
  P(T >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2) / 2 for t >= 0.

  Numerics: as `discretized_gaussian_log_prob`: edge bins from the log tail
  (`student_t_log_sf`), interior bins on the small-tail side of the mean as
  log F(hi) + log1mexp(log F(lo) - log F(hi)); bins narrow relative to
  the density's curvature (d = w (df + 1) / sqrt(df + m^2) < 0.5, w the
  standardised width, m the standardised midpoint), where that difference
  would cancel, are integrated by five-point Gauss-Legendre quadrature of
  the density (in log space; relative error ~ d^10 / 10!, far below float32
  rounding).

  Args:
    x: [...] values on the grid in [-1, 1].
    mean: [...] locations.
    log_scale: [...] log scales.
    df: degrees of freedom (a static Python float, 0 < df <= 200).
    num_bins: number of grid values (256 for 8-bit data).

  Returns:
    [...] elementwise log-probabilities.
  """
  df = float(df)
  if not 0.0 < df <= MAX_STUDENT_T_DF:
    raise ValueError(f"df must be in (0, {MAX_STUDENT_T_DF:g}], got {df}")
  upper, lower, mid, log_width, first, last = _bin_edges(x, mean, log_scale,
                                                         num_bins)
  # Exact interior mass on the small-tail side of the mean.
  right = mid > 0.0
  hi = jnp.where(right, -lower, upper)
  lo = jnp.where(right, -upper, lower)
  width = jnp.exp(log_width)
  m2 = jnp.square(mid)
  narrow = width * (df + 1.0) * jax.lax.rsqrt(df + m2) < _T_QUADRATURE_D
  hi_s = jnp.where(narrow, -1.0, hi)  # safe operands when narrow
  lo_s = jnp.where(narrow, -2.0, lo)
  # The four tails in one call: betainc is a large program, and one call on
  # stacked operands compiles about four times faster than four calls.
  log_cdf_upper, log_sf_lower, log_hi, log_lo = student_t_log_sf(
      jnp.stack([-upper, lower, -hi_s, -lo_s]), df)
  gap = log_lo - log_hi
  exact = log_hi + _log1mexp(jnp.minimum(gap, -1e-30))

  # Five-point Gauss-Legendre quadrature of the density for narrow bins.
  log_norm = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df)
              - 0.5 * math.log(df * math.pi))
  half_width = 0.5 * width
  terms = [math.log(wt) + log_norm - 0.5 * (df + 1.0)
           * jnp.log1p(jnp.square(mid + node * half_width) / df)
           for node, wt in _GAUSS_LEGENDRE_5]
  quadrature = log_width + _LOG_HALF + jax.nn.logsumexp(
      jnp.stack(terms), axis=0)

  interior = jnp.where(narrow, quadrature, exact)
  return jnp.where(first, log_cdf_upper,
                   jnp.where(last, log_sf_lower, interior))


def _log_gamma_ratio(x: Array, theta: Array) -> Array:
  """lgamma(x + theta) - lgamma(theta) - x log(theta), stable for big theta.

  For theta > _STIRLING_THETA it uses Stirling's series for both lgammas,
    (x + theta - 1/2) log1p(x / theta) - x
      + [1/(12 z) - 1/(360 z^3)] from theta to z = x + theta,
  whose terms never cancel catastrophically; below, plain lgamma.
  """
  big = theta > _STIRLING_THETA
  t = jnp.where(big, theta, 2.0 * _STIRLING_THETA)  # safe operand
  z = x + t
  series = ((x + t - 0.5) * jnp.log1p(x / t) - x
            + (1.0 / z - 1.0 / t) / 12.0
            - (1.0 / z ** 3 - 1.0 / t ** 3) / 360.0)
  s = jnp.where(big, 1.0, theta)  # safe operand
  direct = gammaln(x + s) - gammaln(s) - x * jnp.log(s)
  return jnp.where(big, series, direct)


def _log_factorial(x: Array) -> Array:
  """lgamma(x + 1), exactly 0 at x = 0 and 1 (float32 lgamma(1) is ~5e-7,
  which would swamp log NB(0) = -mu for tiny mu)."""
  return jnp.where((x == 0) | (x == 1), 0.0, gammaln(x + 1.0))


def nb_log_prob(x: Array, mu: Array, theta: Array) -> Array:
  """log NB(x; mu, theta): negative binomial with mean mu, inverse dispersion theta.

  The scVI parameterisation (Lopez et al. 2018, "Deep generative modeling
  for single-cell transcriptomics", methods): a Gamma(theta, theta / mu)
  rate mixed into a Poisson, so E[x] = mu and Var[x] = mu + mu^2 / theta.
  Equal to scipy.stats.nbinom(n=theta, p=theta / (theta + mu)).
    log NB = lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
             + theta log(theta / (theta + mu)) + x log(mu / (theta + mu)).

  Numerics: with L = log1p(mu / theta), computed once,
    log NB = x log mu - lgamma(x + 1) - (theta + x) L
             + [lgamma(x + theta) - lgamma(theta) - x log theta],
  so mu -> 0 gives theta L -> mu without cancellation (x log mu uses xlogy,
  0 at x = 0 even for mu = 0; lgamma(x + 1) is exactly 0 at x = 0, 1), and
  theta -> inf tends to the Poisson log-pmf: the bracket is taken from
  Stirling's series for theta > 10, where float32 lgamma differences would
  lose digits. (The other terms are each rounded to float32, so counts in
  the thousands carry ~1e-6 x of absolute rounding, as any float32 form.)

  Args:
    x: [...] non-negative integer counts (float dtype).
    mu: [...] positive means.
    theta: [...] positive inverse dispersions (broadcastable, e.g. [genes]).

  Returns:
    [...] elementwise log-probabilities.
  """
  log1p_ratio = jnp.log1p(mu / theta)  # log((theta + mu) / theta)
  return (xlogy(x, mu) - _log_factorial(x) - (theta + x) * log1p_ratio
          + _log_gamma_ratio(x, theta))


def zinb_log_prob(x: Array, mu: Array, theta: Array, pi_logits: Array) -> Array:
  """log ZINB(x; mu, theta, pi): NB with extra mass pi = sigmoid(pi_logits) at 0.

  The zero-inflated decoder of scVI (Lopez et al. 2018) and DCA (Eraslan et
  al. 2019, "Single-cell RNA-seq denoising using a deep count autoencoder"):
    x == 0: log(pi + (1 - pi) NB(0)),  NB(0) = (theta / (theta + mu))^theta
    x > 0:  log(1 - pi) + log NB(x).
  Numerics: log pi = -softplus(-l) and log(1 - pi) = -softplus(l) for the
  logits l, and the zero case is logaddexp(log pi, log(1 - pi) + log NB(0)),
  so logits of any size (|l| = 1e4) give finite values and gradients.

  Args:
    x: [...] non-negative integer counts (float dtype).
    mu: [...] positive NB means.
    theta: [...] positive NB inverse dispersions.
    pi_logits: [...] logits of the zero-inflation probability.

  Returns:
    [...] elementwise log-probabilities.
  """
  log_pi = -jax.nn.softplus(-pi_logits)
  log_not_pi = -jax.nn.softplus(pi_logits)
  log_nb = nb_log_prob(x, mu, theta)
  log_nb_zero = -theta * jnp.log1p(mu / theta)
  at_zero = jnp.logaddexp(log_pi, log_not_pi + log_nb_zero)
  return jnp.where(x == 0, at_zero, log_not_pi + log_nb)


# ----------------------------------------------------------------------------
# Sampling and means.


def _to_grid(y: Array, num_bins: int) -> Array:
  """Continuous values -> the nearest of the num_bins grid values in [-1, 1]."""
  half_steps = 0.5 * (num_bins - 1)  # grid steps per unit
  k = jnp.round((jnp.clip(y, -1.0, 1.0) + 1.0) * half_steps)
  # XLA may turn the division into a multiplication that lands 1 ulp past
  # 1; the clip keeps the ends exactly -1 and 1.
  return jnp.clip(k / half_steps - 1.0, -1.0, 1.0)


def _discretized_mean(mean: Array, log_scale: Array, survival: Callable,
                      num_bins: int) -> Array:
  """E[x] = -1 + 2h sum_{k=1}^{K-1} P(Y >= -1 + (2k - 1) h), one bin at a time.

  The loop keeps memory at one x-shaped array instead of [num_bins, ...].
  """
  half = 1.0 / (num_bins - 1)
  inv_scale = jnp.exp(-log_scale)
  mean, inv_scale = jnp.broadcast_arrays(mean, inv_scale)

  def body(k, acc):
    edge = -1.0 + (2.0 * k - 1.0) * half  # left edge of bin k
    return acc + survival((edge - mean) * inv_scale)

  total = jax.lax.fori_loop(1, num_bins, body, jnp.zeros_like(mean))
  return -1.0 + 2.0 * half * total


def nb_sample(key: Array, mu: Array, theta: Array) -> Array:
  """Gamma-Poisson: rate ~ Gamma(theta, scale mu / theta), x ~ Poisson(rate)."""
  gamma_key, poisson_key = jax.random.split(key)
  shape = _shape(mu, theta)
  theta = jnp.broadcast_to(theta, shape)
  rate = jax.random.gamma(gamma_key, theta, shape, dtype=theta.dtype)
  rate = rate * (mu / theta)
  return jax.random.poisson(poisson_key, rate, shape).astype(rate.dtype)


def zinb_sample(key: Array, mu: Array, theta: Array,
                 pi_logits: Array) -> Array:
  nb_key, mask_key = jax.random.split(key)
  counts = nb_sample(nb_key, mu, theta)
  shape = _shape(counts, pi_logits)
  dropped = jax.random.bernoulli(mask_key, jax.nn.sigmoid(pi_logits), shape)
  return jnp.where(dropped, 0.0, counts).astype(counts.dtype)


def _gaussian_sample(key: Array, mean: Array, log_scale: Array) -> Array:
  shape = _shape(mean, log_scale)
  dtype = jnp.result_type(mean, log_scale)
  return mean + jnp.exp(log_scale) * jax.random.normal(key, shape, dtype)


def _logistic_sample(key: Array, mean: Array, log_scale: Array) -> Array:
  shape = _shape(mean, log_scale)
  dtype = jnp.result_type(mean, log_scale)
  return mean + jnp.exp(log_scale) * jax.random.logistic(key, shape, dtype)


def _laplace_sample(key: Array, mean: Array, log_scale: Array) -> Array:
  shape = _shape(mean, log_scale)
  dtype = jnp.result_type(mean, log_scale)
  return mean + jnp.exp(log_scale) * jax.random.laplace(key, shape, dtype)


def _student_t_sample(key: Array, mean: Array, log_scale: Array,
                      df: float) -> Array:
  shape = _shape(mean, log_scale)
  dtype = jnp.result_type(mean, log_scale)
  return mean + jnp.exp(log_scale) * jax.random.t(key, df, shape, dtype)


def _bernoulli_sample(key: Array, logits: Array) -> Array:
  x = jax.random.bernoulli(key, jax.nn.sigmoid(logits))
  return x.astype(jnp.result_type(logits, jnp.float32))


# ----------------------------------------------------------------------------
# The registry.


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """An observation model, looked up by name from a config.

  Attributes:
    name: the registry name.
    params: names of the decoder outputs it needs, each shaped like x (a
      per-feature parameter may be broadcast by the caller).
    log_prob: (x [batch, ...], params) -> [batch], summed over all
      non-batch axes.
    sample: (key, params) -> x-shaped sample.
    mean: (params) -> x-shaped E[x].
    data: what x must be: "binary", "unit_interval" (the [-1, 1] grid of the
      discretised models), "real" or "counts".
  """

  name: str
  params: tuple[str, ...]
  log_prob: Callable[[Array, Params], Array]
  sample: Callable[[Array, Params], Array]
  mean: Callable[[Params], Array]
  data: str


def _make(name: str, params: tuple[str, ...], elementwise: Callable,
          sample: Callable, mean: Callable, data: str) -> Likelihood:
  def log_prob(x: Array, p: Params) -> Array:  # [batch, ...] -> [batch]
    values = elementwise(x, *(p[k] for k in params))
    values = jnp.broadcast_to(values, _shape(values, x))
    return _sum_non_batch(values)

  return Likelihood(
      name=name, params=params, log_prob=log_prob,
      sample=lambda key, p: sample(key, *(p[k] for k in params)),
      mean=lambda p: mean(*(p[k] for k in params)),
      data=data)


LIKELIHOODS: Registry[Likelihood] = Registry("likelihood", hint="--likelihood")

LIKELIHOODS.register("bernoulli", _make(
    "bernoulli", ("logits",), bernoulli_log_prob, _bernoulli_sample,
    jax.nn.sigmoid, "binary"))
LIKELIHOODS.register("gaussian", _make(
    "gaussian", ("mean", "log_scale"), gaussian_log_prob, _gaussian_sample,
    lambda mean, log_scale: jnp.broadcast_to(mean, _shape(mean, log_scale)),
    "real"))
LIKELIHOODS.register("discretized_logistic", _make(
    "discretized_logistic", ("mean", "log_scale"),
    discretized_logistic_log_prob,
    lambda key, mean, log_scale: _to_grid(
        _logistic_sample(key, mean, log_scale), 256),
    lambda mean, log_scale: _discretized_mean(
        mean, log_scale, lambda t: jax.nn.sigmoid(-t), 256),
    "unit_interval"))
LIKELIHOODS.register("discretized_gaussian", _make(
    "discretized_gaussian", ("mean", "log_scale"),
    discretized_gaussian_log_prob,
    lambda key, mean, log_scale: _to_grid(
        _gaussian_sample(key, mean, log_scale), 256),
    lambda mean, log_scale: _discretized_mean(
        mean, log_scale, lambda t: ndtr(-t), 256),
    "unit_interval"))
LIKELIHOODS.register("discretized_laplace", _make(
    "discretized_laplace", ("mean", "log_scale"),
    discretized_laplace_log_prob,
    lambda key, mean, log_scale: _to_grid(
        _laplace_sample(key, mean, log_scale), 256),
    lambda mean, log_scale: _discretized_mean(
        mean, log_scale, lambda t: jnp.exp(_laplace_log_sf(t)), 256),
    "unit_interval"))


def discretized_student_t(df: float = DEFAULT_STUDENT_T_DF) -> Likelihood:
  """The "discretized_student_t" Likelihood with `df` degrees of freedom.

  df is a fixed (static) setting of the model, e.g. the config field
  `vae.student_t_df`; the registry's entry uses DEFAULT_STUDENT_T_DF.

  Args:
    df: degrees of freedom, 0 < df <= MAX_STUDENT_T_DF.

  Returns:
    A Likelihood named "discretized_student_t" over the [-1, 1] grid.

  Raises:
    ValueError: df out of range.
  """
  df = float(df)
  if not 0.0 < df <= MAX_STUDENT_T_DF:
    raise ValueError(f"df must be in (0, {MAX_STUDENT_T_DF:g}], got {df}")
  return _make(
      "discretized_student_t", ("mean", "log_scale"),
      lambda x, mean, log_scale: discretized_student_t_log_prob(
          x, mean, log_scale, df),
      lambda key, mean, log_scale: _to_grid(
          _student_t_sample(key, mean, log_scale, df), 256),
      lambda mean, log_scale: _discretized_mean(
          mean, log_scale, lambda t: jnp.exp(student_t_log_sf(t, df)), 256),
      "unit_interval")


LIKELIHOODS.register("discretized_student_t", discretized_student_t())
LIKELIHOODS.register("nb", _make(
    "nb", ("mu", "theta"), nb_log_prob, nb_sample,
    lambda mu, theta: jnp.broadcast_to(mu, _shape(mu, theta)), "counts"))
LIKELIHOODS.register("zinb", _make(
    "zinb", ("mu", "theta", "pi_logits"), zinb_log_prob, zinb_sample,
    lambda mu, theta, pi_logits: jnp.broadcast_to(
        jax.nn.sigmoid(-pi_logits) * mu, _shape(mu, theta, pi_logits)),
    "counts"))
