"""The heavy-tailed image likelihoods: normalised over the 256 levels, equal
to scipy's Laplace / Student-t mass of each bin, finite in the far tails,
with working samplers and means."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from medgen_jax.objectives import likelihoods as lik

GRID = np.linspace(-1.0, 1.0, 256)
HALF = 1.0 / 255.0
# (mean, log_scale): centred, off-centre, near an edge, wide, and narrow.
SETTINGS = [(0.1, -3.0), (-0.7, -5.0), (0.93, -2.0), (0.3, 1.0), (-0.2, -6.0)]


def _reference(dist, mean, scale):
  """log of the exact bin masses in float64, each taken on the side of the
  mean where scipy's tail functions do not cancel; edge bins get the tails."""
  lo, hi = (GRID - HALF - mean) / scale, (GRID + HALF - mean) / scale
  right = lo + hi > 0
  a = np.where(right, dist.logsf(lo), dist.logcdf(hi))
  b = np.where(right, dist.logsf(hi), dist.logcdf(lo))
  out = a + np.log(-np.expm1(b - a))
  out[0], out[-1] = dist.logcdf(hi[0]), dist.logsf(lo[-1])
  return out


def _cases():
  yield "laplace", lik.discretized_laplace_log_prob, stats.laplace()
  for df in (0.7, 3.0, 30.0):
    yield (f"t{df:g}",
           lambda x, m, s, df=df: lik.discretized_student_t_log_prob(x, m, s,
                                                                      df),
           stats.t(df))


CASES = list(_cases())


@pytest.mark.parametrize("name,log_prob,dist", CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mean,log_scale", SETTINGS)
def test_normalised_and_equal_to_scipy(name, log_prob, dist, mean, log_scale):
  lp = np.asarray(log_prob(jnp.asarray(GRID, jnp.float32), mean, log_scale),
                  np.float64)
  assert np.all(np.isfinite(lp)), name
  assert abs(np.exp(lp).sum() - 1.0) < 1e-4
  ref = _reference(dist, mean, np.exp(log_scale))
  # Relative to the size of the value (tail bins reach -1e4 nats).
  np.testing.assert_allclose(lp, ref, rtol=5e-5, atol=5e-5)
  # Interior bins are the cdf differences themselves (hand check of the
  # plain formula where it does not cancel: bins near the mean). float32
  # betainc carries ~3e-6 of absolute error in a cdf near 0.5 at df = 30,
  # up to 2e-4 of a 0.017 bin; a wrong formula is off by far more.
  s = np.exp(log_scale)
  near = np.abs(GRID - mean) < 3 * s
  near[[0, -1]] = False
  if near.any():
    diff = (dist.cdf((GRID + HALF - mean) / s)
            - dist.cdf((GRID - HALF - mean) / s))
    np.testing.assert_allclose(np.exp(lp[near]), diff[near], rtol=2.5e-4)


# float32 betainc loses digits for large df/2 (to ~5e-5 at df = 200).
@pytest.mark.parametrize("df,rtol", [(0.5, 2e-5), (3.0, 2e-5), (200.0, 1e-4)])
def test_student_t_log_sf_matches_scipy_far_out(df, rtol):
  t = np.array([-1e30, -1e8, -40.0, -1.0, -1e-4, 0.0, 2e-4, 0.05, 1.0, 6.0,
                40.0, 1e8, 1e30])
  got = np.asarray(lik.student_t_log_sf(jnp.asarray(t, jnp.float32), df),
                   np.float64)
  ref = stats.t(df).logsf(t)
  ok = np.isfinite(ref)  # scipy's own logsf underflows to -inf for df = 200
  np.testing.assert_allclose(got[ok], ref[ok], rtol=rtol, atol=1e-6)
  assert np.all(np.isfinite(got))
  grads = jax.vmap(jax.grad(lambda u: lik.student_t_log_sf(u, df)))(
      jnp.asarray(t, jnp.float32))
  assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads) <= 0)


@pytest.mark.parametrize("name", ["discretized_laplace",
                                  "discretized_student_t"])
def test_finite_gradients_at_extreme_scales_and_outliers(name):
  ll = lik.LIKELIHOODS.get(name)
  x = jnp.asarray(GRID, jnp.float32).reshape(1, 256)

  def total(mean, log_scale):
    p = {"mean": jnp.full((1, 256), mean), "log_scale": jnp.full((1, 256),
                                                                   log_scale)}
    return ll.log_prob(x, p)[0]

  for mean, log_scale in [(0.1, -12.0), (0.1, 12.0), (-0.98, -8.0)]:
    value = total(mean, log_scale)
    grads = jax.grad(total, (0, 1))(mean, log_scale)
    assert np.isfinite(float(value)) and all(
        np.isfinite(float(g)) for g in grads), (mean, log_scale, grads)


def test_outlier_costs_by_tail():
  # A pixel 1 away from a mean with scale 0.02 (50 scales out): the
  # Student-t pays ~ 4 log 50 + const, the exponential tails (Laplace,
  # logistic) ~ 50 nats, the Gaussian ~ 50^2 / 2.
  x, mean, log_scale = jnp.float32(0.6), jnp.float32(-0.4), jnp.log(0.02)
  t = -float(lik.discretized_student_t_log_prob(x, mean, log_scale, 3.0))
  lap = -float(lik.discretized_laplace_log_prob(x, mean, log_scale))
  logi = -float(lik.discretized_logistic_log_prob(x, mean, log_scale))
  gauss = -float(lik.discretized_gaussian_log_prob(x, mean, log_scale))
  assert t < 25 < lap < 60 and 25 < logi < 60 and gauss > 1000
  # Laplace: -log((e^-a - e^-b) / 2) by hand.
  a, b = (1.0 - HALF) / 0.02, (1.0 + HALF) / 0.02
  assert lap == pytest.approx(-np.log(0.5 * (np.exp(-a) - np.exp(-b))),
                              rel=1e-5)


@pytest.mark.parametrize("name", ["discretized_laplace",
                                  "discretized_student_t"])
@pytest.mark.parametrize("mean,log_scale", [(0.3, -2.0), (-0.95, -1.0)])
def test_mean_and_samples(name, mean, log_scale):
  ll = lik.LIKELIHOODS.get(name)
  p = {"mean": jnp.full((1, 1), mean), "log_scale": jnp.full((1, 1),
                                                             log_scale)}
  lp = jax.vmap(lambda v: ll.log_prob(v.reshape(1, 1), p))(
      jnp.asarray(GRID, jnp.float32))[:, 0]
  exact = float(np.sum(np.exp(np.asarray(lp, np.float64)) * GRID))
  assert float(ll.mean(p)[0, 0]) == pytest.approx(exact, abs=1e-5)
  n = 40000
  big = {k: jnp.broadcast_to(v, (n, 1)) for k, v in p.items()}
  s = np.asarray(ll.sample(jax.random.key(0), big))[:, 0]
  # Samples lie on the grid and their histogram follows the pmf.
  k = np.round((s + 1.0) * 127.5)
  np.testing.assert_allclose(s, k / 127.5 - 1.0, atol=1e-6)
  counts = np.bincount(k.astype(int), minlength=256)
  probs = np.exp(np.asarray(lp, np.float64))
  keep = probs * n > 20
  observed = np.append(counts[keep], counts[~keep].sum())
  expected = np.append(probs[keep], probs[~keep].sum()) * n
  expected *= observed.sum() / expected.sum()
  assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_student_t_df_is_a_setting():
  three = lik.LIKELIHOODS.get("discretized_student_t")
  assert three.name == lik.discretized_student_t(10.0).name
  x = jnp.zeros((1, 4))
  p = {"mean": jnp.full((1, 4), 0.5), "log_scale": jnp.full((1, 4), -3.0)}
  assert float(three.log_prob(x, p)[0]) == pytest.approx(
      float(lik.discretized_student_t(3.0).log_prob(x, p)[0]))
  assert float(three.log_prob(x, p)[0]) > float(
      lik.discretized_student_t(30.0).log_prob(x, p)[0])
  for bad in (0.0, -1.0, 500.0):
    with pytest.raises(ValueError, match="df must be in"):
      lik.discretized_student_t(bad)
