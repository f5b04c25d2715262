"""The ELBO and IWAE bound against a linear-Gaussian model with exact log p(x).

The model p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I) has
  log p(x) = log N(x; b, W W^T + sigma^2 I)          (scipy)
  p(z|x)   = N(S W^T (x - b) / sigma^2, S),  S = (I + W^T W / sigma^2)^-1.
W has orthogonal columns, so S is diagonal and the exact posterior is a
diagonal Gaussian the encoder could output.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from medgen_jax.objectives import elbo as E
from medgen_jax.objectives import likelihoods as lk

X_DIM, Z_DIM, SIGMA = 5, 2, 0.5
_rng = np.random.default_rng(0)
_q, _ = np.linalg.qr(_rng.normal(size=(X_DIM, Z_DIM)))
W = _q * np.array([2.0, 0.7])  # [x_dim, z_dim], W^T W = diag(4, 0.49)
B = _rng.normal(size=X_DIM)
XS = (_rng.normal(size=(4, Z_DIM)) @ W.T + B
      + SIGMA * _rng.normal(size=(4, X_DIM)))  # [4, x_dim] observed examples
LOG_PX = stats.multivariate_normal(B, W @ W.T + SIGMA ** 2 * np.eye(X_DIM)
                                  ).logpdf(XS)  # [4]

POST_VAR = np.linalg.inv(np.eye(Z_DIM) + W.T @ W / SIGMA ** 2)  # diagonal
POST_MEAN = (XS - B) @ W @ POST_VAR / SIGMA ** 2  # [4, z_dim]


# Jitted once each (log_lik_fn, K and analytic_kl static): one compilation
# per call site instead of one per primitive in eager mode.
elbo = jax.jit(E.elbo, static_argnums=0, static_argnames="analytic_kl")
iwae_bound = jax.jit(E.iwae_bound, static_argnums=(0, 4))


def repeat(a, times):
  """[4, ...] -> [4 * times, ...] float32, each example `times` times in a row."""
  return jnp.asarray(np.repeat(np.asarray(a), times, axis=0), jnp.float32)


def make_log_lik(x):
  """z [..., batch, z_dim] -> [..., batch] log p(x|z) for x [batch, x_dim]."""
  w_t = jnp.asarray(W.T, jnp.float32)
  b = jnp.asarray(B, jnp.float32)

  def log_lik(z):
    return jnp.sum(lk.gaussian_log_prob(x, z @ w_t + b, math.log(SIGMA)), -1)

  return log_lik


def per_example(values, times):
  """[4 * times] -> mean and standard error over each example's repeats."""
  v = np.asarray(values, np.float64).reshape(4, times)
  return v.mean(axis=1), v.std(axis=1) / np.sqrt(times)


# ----------------------------------------------------------------------------
# KL, reparameterisation, warm-up, bits per dimension.


def test_gaussian_kl_closed_form_and_monte_carlo():
  rng = np.random.default_rng(1)
  mean = rng.normal(size=(3, 4))
  log_var = rng.normal(size=(3, 4))
  got = np.asarray(E.gaussian_kl(*(jnp.asarray(a, jnp.float32)
                                   for a in (mean, log_var))))
  assert got.shape == (3,)
  by_hand = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=-1)
  np.testing.assert_allclose(got, by_hand, rtol=1e-5)

  # E_q[log q(z) - log p(z)] by Monte Carlo in float64 with scipy.
  n = 200_000
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, 3, 4))
  log_ratio = np.sum(stats.norm.logpdf(z, mean, np.exp(0.5 * log_var))
                     - stats.norm.logpdf(z), axis=-1)  # [n, 3]
  stderr = log_ratio.std(axis=0) / np.sqrt(n)
  assert np.all(np.abs(log_ratio.mean(axis=0) - got) < 4 * stderr)


def test_gaussian_kl_is_zero_at_the_prior_and_small_near_it():
  zeros = jnp.zeros((2, 7))
  np.testing.assert_array_equal(E.gaussian_kl(zeros, zeros), 0.0)
  # KL ~ (log_var^2 / 4) per dimension for tiny log_var: no cancellation.
  np.testing.assert_allclose(E.gaussian_kl(zeros, jnp.full((2, 7), 1e-3)),
                             7 * 1e-6 / 4, rtol=1e-3)


def test_reparameterize_shapes_and_moments():
  mean = jnp.array([[0.0, 3.0], [-2.0, 1.0]])
  log_var = jnp.array([[0.0, -2.0], [1.0, 0.5]])
  key = jax.random.key(2)
  assert E.reparameterize(key, mean, log_var).shape == (2, 2)
  z = np.asarray(E.reparameterize(key, mean, log_var, num_samples=20000))
  assert z.shape == (20000, 2, 2)
  var = np.exp(np.asarray(log_var))
  assert np.all(np.abs(z.mean(axis=0) - mean) < 4 * np.sqrt(var / 20000))
  np.testing.assert_allclose(z.var(axis=0), var, rtol=0.05)


def test_kl_weight_warm_up():
  assert float(E.kl_weight(0, 100, 2.0)) == 0.0
  assert float(E.kl_weight(25, 100, 2.0)) == 0.5
  assert float(E.kl_weight(100, 100, 2.0)) == 2.0
  assert float(E.kl_weight(1000, 100, 2.0)) == 2.0
  assert float(E.kl_weight(0, 0, 0.3)) == pytest.approx(0.3)
  assert float(E.kl_weight(7, 0)) == 1.0
  traced = jax.jit(lambda step: E.kl_weight(step, 200, 4.0))
  assert float(traced(jnp.int32(50))) == 1.0
  with pytest.raises(ValueError):
    E.kl_weight(0, -1)


def test_bits_per_dim_by_hand():
  dims = 28 * 28
  nll = np.array([3.0, 0.5]) * dims * np.log(2.0)
  np.testing.assert_allclose(E.bits_per_dim(nll, dims), [3.0, 0.5], rtol=1e-6)
  assert float(E.bits_per_dim(np.log(2.0), 1)) == pytest.approx(1.0)


# ----------------------------------------------------------------------------
# The ELBO against exact log p(x).

REPEATS = 2000


def expected_elbo(mean, log_var):
  """E_q[log p(x|z)] - KL(q || p(z)) in closed form (float64, by hand)."""
  var = np.exp(log_var)
  resid = XS - mean @ W.T - B  # [4, x_dim]
  trace = np.sum(var[:, None, :] * W[None] ** 2, axis=(1, 2))  # tr(W S W^T)
  log_lik = (-0.5 * X_DIM * np.log(2 * np.pi * SIGMA ** 2)
             - (np.sum(resid ** 2, -1) + trace) / (2 * SIGMA ** 2))
  kl = 0.5 * np.sum(var + mean ** 2 - 1 - log_var, axis=-1)
  return log_lik - kl


def kl_to_posterior(mean, log_var):
  """KL(q || p(z|x)) for diagonal q and the (diagonal) exact posterior."""
  post_var = np.diag(POST_VAR)
  var = np.exp(log_var)
  return 0.5 * np.sum(var / post_var + (mean - POST_MEAN) ** 2 / post_var - 1
                      + np.log(post_var) - log_var, axis=-1)


def test_elbo_is_below_log_px_by_kl_to_the_posterior():
  mean = np.array([[0.5, -1.0], [0.0, 0.0], [2.0, 1.0], [-1.0, 0.3]])
  log_var = np.array([[0.0, -1.0], [0.5, 0.5], [-2.0, 0.0], [1.0, -3.0]])
  # The identity log p(x) - ELBO = KL(q || p(z|x)), all in closed form.
  want = expected_elbo(mean, log_var)
  np.testing.assert_allclose(LOG_PX - want, kl_to_posterior(mean, log_var),
                             rtol=1e-9)
  assert np.all(want < LOG_PX)

  terms = elbo(make_log_lik(repeat(XS, REPEATS)), repeat(mean, REPEATS),
               repeat(log_var, REPEATS), jax.random.key(3), 1.0)
  for t in terms:
    assert t.shape == (4 * REPEATS,)
  np.testing.assert_allclose(terms.elbo, terms.log_lik - terms.kl, rtol=1e-6)
  np.testing.assert_allclose(  # analytic KL: the same for every repeat
      per_example(terms.kl, REPEATS)[0],
      0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, -1), rtol=1e-5)
  got, stderr = per_example(terms.elbo, REPEATS)
  assert np.all(np.abs(got - want) < 4 * stderr + 1e-4)
  assert np.all(got < LOG_PX)


def test_elbo_beta_weights_the_kl():
  log_lik = make_log_lik(repeat(XS, 1))
  mean = repeat(POST_MEAN, 1)
  log_var = jnp.zeros((4, Z_DIM))
  key = jax.random.key(4)
  one = elbo(log_lik, mean, log_var, key)
  four = elbo(log_lik, mean, log_var, key, beta=4.0)
  np.testing.assert_allclose(four.log_lik, one.log_lik)  # same sample of z
  np.testing.assert_allclose(four.elbo, one.log_lik - 4.0 * one.kl, rtol=1e-6)


def test_elbo_with_the_exact_posterior_equals_log_px():
  mean = repeat(POST_MEAN, REPEATS)
  log_var = repeat(np.log(np.diag(POST_VAR))[None].repeat(4, 0), REPEATS)
  log_lik = make_log_lik(repeat(XS, REPEATS))
  want = np.repeat(LOG_PX, REPEATS)
  # With the sampled KL every sample gives log p(x) exactly (zero variance).
  sampled = elbo(log_lik, mean, log_var, jax.random.key(5), analytic_kl=False)
  np.testing.assert_allclose(sampled.elbo, want, rtol=0, atol=2e-4)
  # With the analytic KL it does so in expectation.
  analytic = elbo(log_lik, mean, log_var, jax.random.key(5))
  got, stderr = per_example(analytic.elbo, REPEATS)
  assert np.all(np.abs(got - LOG_PX) < 4 * stderr + 1e-4)
  assert np.all(stderr > 1e-3)  # ... but not sample by sample
  # The IWAE bound is tight for every K.
  for k in (1, 3):
    np.testing.assert_allclose(
        iwae_bound(log_lik, mean, log_var, jax.random.key(6), k), want,
        rtol=0, atol=2e-4)


# ----------------------------------------------------------------------------
# The IWAE bound with a poor encoder.

IWAE_REPEATS = 300


def test_iwae_bound_increases_with_k_towards_log_px():
  # q(z|x) = N(0, 3 I) ignores x: a deliberately poor encoder.
  mean = jnp.zeros((4 * IWAE_REPEATS, Z_DIM))
  log_var = jnp.full((4 * IWAE_REPEATS, Z_DIM), math.log(3.0))
  log_lik = make_log_lik(repeat(XS, IWAE_REPEATS))
  means, errors = [], []
  for k in (1, 5, 50, 1000):
    values = iwae_bound(log_lik, mean, log_var, jax.random.key(k), k)
    assert values.shape == (4 * IWAE_REPEATS,)
    m, s = per_example(values, IWAE_REPEATS)
    means.append(m)
    errors.append(s)
    assert np.all(m < LOG_PX + 4 * s)  # a lower bound, up to MC noise
  # K = 1 is the ELBO estimate, whose expectation is known in closed form.
  want = expected_elbo(np.zeros((4, Z_DIM)), np.full((4, Z_DIM), math.log(3.0)))
  assert np.all(np.abs(means[0] - want) < 4 * errors[0])
  for lo, hi, e_lo, e_hi in zip(means, means[1:], errors, errors[1:]):
    assert np.all(hi > lo - 3 * np.hypot(e_lo, e_hi))
  gaps = [LOG_PX - m for m in means]
  assert np.all(gaps[0] > 10.0)  # the poor encoder's ELBO is far below
  assert np.all(gaps[2] < 0.1 * gaps[0])
  assert np.all(np.abs(gaps[3]) < 0.05)  # K = 1000: nearly log p(x)


def test_iwae_rejects_zero_samples():
  with pytest.raises(ValueError):
    E.iwae_bound(lambda z: z.sum(-1), jnp.zeros((2, 3)), jnp.zeros((2, 3)),
                 jax.random.key(0), 0)
