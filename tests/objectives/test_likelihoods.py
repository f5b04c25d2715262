"""Observation models against scipy.stats, hand formulas and simulations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special, stats

from medgen_jax.errors import UnknownNameError
from medgen_jax.objectives import likelihoods as lk

GRID = np.linspace(-1.0, 1.0, 256)  # the 8-bit grid, (2/255) u - 1
HALF = 1.0 / 255.0

# Jitted once each: one compilation per input shape instead of one per
# primitive in eager mode (the difference is most of this file's run time).
gaussian_log_prob = jax.jit(lk.gaussian_log_prob)
bernoulli_log_prob = jax.jit(lk.bernoulli_log_prob)
discretized_logistic_log_prob = jax.jit(lk.discretized_logistic_log_prob)
discretized_gaussian_log_prob = jax.jit(lk.discretized_gaussian_log_prob)
nb_log_prob = jax.jit(lk.nb_log_prob)
zinb_log_prob = jax.jit(lk.zinb_log_prob)


def f32(*arrays):
  return [jnp.asarray(a, jnp.float32) for a in arrays]


def as64(x):
  return np.asarray(x, np.float64)


# ----------------------------------------------------------------------------
# Elementwise log-densities against scipy.


def test_gaussian_matches_scipy():
  rng = np.random.default_rng(0)
  x, mean = rng.normal(size=(2, 500)) * 3.0
  log_scale = rng.uniform(-6.0, 20.0, size=500)
  got = gaussian_log_prob(*f32(x, mean, log_scale))
  want = stats.norm.logpdf(x, mean, np.exp(log_scale))
  assert got.shape == (500,)
  np.testing.assert_allclose(as64(got), want, rtol=1e-5, atol=1e-4)


def test_bernoulli_matches_scipy_and_cross_entropy():
  rng = np.random.default_rng(1)
  logits = rng.uniform(-15.0, 15.0, size=400)
  x = (rng.uniform(size=400) < 0.5).astype(np.float64)
  got = bernoulli_log_prob(*f32(x, logits))
  want = stats.bernoulli.logpmf(x, special.expit(logits))
  np.testing.assert_allclose(as64(got), want, rtol=1e-5, atol=1e-5)

  # Extreme logits: exact by hand, x * l - log(1 + e^l), finite.
  logits = np.array([-100.0, -30.0, 30.0, 100.0, 1e4, -1e4])
  for value in (0.0, 1.0):
    x = np.full_like(logits, value)
    got = as64(bernoulli_log_prob(*f32(x, logits)))
    np.testing.assert_allclose(got, x * logits - np.logaddexp(0.0, logits),
                               rtol=1e-6, atol=1e-12)

  # Grey levels in [0, 1]: the (unnormalised) negative cross-entropy.
  x = rng.uniform(size=50)
  logits = rng.normal(size=50) * 3.0
  p = special.expit(logits)
  np.testing.assert_allclose(as64(bernoulli_log_prob(*f32(x, logits))),
                             x * np.log(p) + (1 - x) * np.log1p(-p),
                             rtol=1e-5, atol=1e-5)


def nb_reference(x, mu, theta):
  return stats.nbinom.logpmf(x, n=theta, p=theta / (theta + mu))


def test_nb_matches_scipy():
  rng = np.random.default_rng(2)
  n = 3000
  mu = np.exp(rng.uniform(np.log(1e-3), np.log(500.0), n))
  theta = np.exp(rng.uniform(np.log(1e-2), np.log(1e4), n))
  x = rng.poisson(rng.gamma(theta, mu / theta)).astype(np.float64)
  x[:100] = rng.integers(0, 2000, 100)  # far tails too
  got = as64(nb_log_prob(*f32(x, mu, theta)))
  want = nb_reference(x, mu, theta)
  # The log-pmf sums terms of size ~x log x (lgamma(x + 1), x log mu), each
  # rounded to float32: allow that rounding, ~1e-6 x, on top of 1e-3.
  np.testing.assert_array_less(np.abs(got - want),
                               1e-3 + 1e-6 * x + 2e-5 * np.abs(want))


@pytest.mark.parametrize("theta", [1e4, 1e6, 1e8])
def test_nb_with_large_theta_is_poisson(theta):
  rng = np.random.default_rng(3)
  mu = rng.uniform(0.1, 100.0, 500)
  x = rng.poisson(mu).astype(np.float64)
  got = as64(nb_log_prob(*f32(x, mu, np.full_like(mu, theta))))
  np.testing.assert_allclose(got, nb_reference(x, mu, theta), rtol=2e-5,
                             atol=1e-3)
  # The NB - Poisson gap is about (x - mu)^2 / (2 theta) - x / (2 theta).
  gap = np.max(np.abs(nb_reference(x, mu, theta) - stats.poisson.logpmf(x, mu)))
  np.testing.assert_allclose(got, stats.poisson.logpmf(x, mu), rtol=2e-5,
                             atol=1e-3 + gap)


def test_nb_with_tiny_mu():
  x = np.array([0.0, 1.0, 2.0, 10.0])
  for theta in (1e-2, 0.5, 10.0, 1e4):
    got = as64(nb_log_prob(*f32(x, np.full(4, 1e-6), np.full(4, theta))))
    np.testing.assert_allclose(got, nb_reference(x, 1e-6, theta), rtol=2e-6,
                               atol=1e-6)
  # log NB(0) = -theta log1p(mu / theta) -> -mu: no cancellation to 0 or NaN.
  np.testing.assert_allclose(as64(nb_log_prob(*f32(0.0, 1e-6, 1e4))), -1e-6,
                             rtol=1e-3)


def zinb_reference(x, mu, theta, pi):
  nb = nb_reference(x, mu, theta)
  return np.where(x == 0, np.log(pi + (1 - pi) * np.exp(nb)),
                  np.log1p(-pi) + nb)


def test_zinb_matches_the_explicit_mixture():
  rng = np.random.default_rng(4)
  n = 2000
  mu = np.exp(rng.uniform(np.log(1e-2), np.log(200.0), n))
  theta = np.exp(rng.uniform(np.log(0.05), np.log(1e3), n))
  pi_logits = rng.uniform(-6.0, 6.0, n)
  x = rng.poisson(rng.gamma(theta, mu / theta)).astype(np.float64)
  x[rng.uniform(size=n) < 0.3] = 0.0
  got = as64(zinb_log_prob(*f32(x, mu, theta, pi_logits)))
  want = zinb_reference(x, mu, theta, special.expit(pi_logits))
  np.testing.assert_array_less(np.abs(got - want),
                               1e-3 + 1e-6 * x + 2e-5 * np.abs(want))


def test_zinb_extreme_logits_are_finite_and_right():
  x = np.array([0.0, 0.0, 3.0, 3.0])
  mu, theta = np.full(4, 2.0), np.full(4, 1.5)
  nb = nb_reference(x, mu, theta)
  # pi_logits = -30: pi ~ 1e-13, the ZINB is the NB.
  got = as64(zinb_log_prob(*f32(x, mu, theta, np.full(4, -30.0))))
  np.testing.assert_allclose(got, nb, rtol=1e-5)
  # pi_logits = +30: all mass at zero; log(1 - pi) = -softplus(30) ~ -30.
  got = as64(zinb_log_prob(*f32(x, mu, theta, np.full(4, 30.0))))
  np.testing.assert_allclose(got[:2], 0.0, atol=1e-6)
  np.testing.assert_allclose(got[2:], -30.0 + nb[2:], rtol=1e-5)
  for logit in (-1e4, 1e4):
    values = zinb_log_prob(*f32(x, mu, theta, np.full(4, logit)))
    assert np.all(np.isfinite(values))


def discretized_reference(x, mean, log_scale, dist):
  """log mass of [x - h, x + h] (edge bins: the tails) from scipy, in float64.

  Left of the mean, log(cdf(upper) - cdf(lower)); right of it, the same with
  survival functions; both from scipy's log-cdfs, so that neither the tails
  underflow nor a difference of two numbers near 1 cancels.
  """
  s = np.exp(log_scale)
  upper, lower = (x + HALF - mean) / s, (x - HALF - mean) / s
  first, last = x < -1 + HALF / 2, x > 1 - HALF / 2

  def log_diff(log_big, log_small):  # log(e^big - e^small), big > small
    with np.errstate(divide="ignore"):
      return log_big + np.log(-np.expm1(log_small - log_big))

  left = log_diff(dist.logcdf(upper), dist.logcdf(lower))
  right = log_diff(dist.logsf(lower), dist.logsf(upper))
  interior = np.where(x > mean, right, left)
  return np.where(first, dist.logcdf(upper),
                  np.where(last, dist.logsf(lower), interior))


DISCRETIZED = [(discretized_logistic_log_prob, stats.logistic),
               (discretized_gaussian_log_prob, stats.norm)]


@pytest.mark.parametrize("fn,dist", DISCRETIZED, ids=["logistic", "gaussian"])
def test_discretized_matches_scipy_cdf_differences(fn, dist):
  rng = np.random.default_rng(5)
  n = 4000
  x = GRID[rng.integers(0, 256, n)]
  x[:256] = GRID  # every bin, edges included
  mean = rng.uniform(-1.3, 1.3, n)
  log_scale = rng.uniform(-7.0, 8.0, n)  # bins wide and narrow relative to s
  got = as64(fn(*f32(x, mean, log_scale)))
  want = discretized_reference(x, mean, log_scale, dist)
  assert np.all(np.isfinite(got)) and np.all(np.isfinite(want))
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("fn,dist", DISCRETIZED, ids=["logistic", "gaussian"])
@pytest.mark.parametrize("mean,log_scale", [
    (0.0, -3.0), (0.3, -6.0), (-0.9, 0.0), (0.5, 3.0), (0.0, 12.0),
    (0.99, -9.0), (2.0, -2.0), (-5.0, 0.5), (0.1, -12.0), (-1.0, -4.6)])
def test_discretized_probabilities_sum_to_one(fn, dist, mean, log_scale):
  del dist
  got = as64(fn(*f32(GRID, mean, log_scale)))
  assert np.all(np.isfinite(got)) and np.all(got <= 1e-6)
  np.testing.assert_allclose(np.sum(np.exp(got)), 1.0, atol=1e-5)


def grid_of(*values):
  """Every combination of the given values, as flat float32 arrays."""
  return f32(*(a.ravel() for a in np.meshgrid(*values, indexing="ij")))


def test_gradients_are_finite_at_extreme_parameters():
  # Elementwise functions: the gradient of the sum is every entry's gradient.
  x, mean, log_scale = grid_of(GRID[[0, 1, 100, 128, 254, 255]],
                               [-3.0, 0.0, 0.999], [-12.0, -5.0, 0.0, 15.0])
  for fn, _ in DISCRETIZED:
    grads = jax.jit(jax.grad(lambda m, s: jnp.sum(fn(x, m, s)),
                             argnums=(0, 1)))(mean, log_scale)
    assert np.all(np.isfinite(grads)), fn.__name__
  counts, mu, theta, logits = grid_of(
      [0.0, 1.0, 7.0, 300.0], [1e-6, 1.0, 1e3], [1e-3, 1.0, 11.0, 1e4, 1e7],
      [-1e4, -30.0, 0.0, 30.0, 1e4])
  grads = jax.jit(jax.grad(
      lambda m, t, l: jnp.sum(lk.zinb_log_prob(counts, m, t, l)),
      argnums=(0, 1, 2)))(mu, theta, logits)
  assert np.all(np.isfinite(grads))


# ----------------------------------------------------------------------------
# The registry.

BATCH_SHAPE = (4, 3, 5)


def example_params(name, rng):
  """Parameters shaped [4, 3, 5] (theta per feature [5]) and matching x."""
  normal = lambda: jnp.asarray(rng.normal(size=BATCH_SHAPE), jnp.float32)
  if name == "bernoulli":
    p = {"logits": normal()}
    x = (rng.uniform(size=BATCH_SHAPE) < 0.5)
  elif name == "gaussian":
    p = {"mean": normal(), "log_scale": normal() * 0.5}
    x = rng.normal(size=BATCH_SHAPE)
  elif name.startswith("discretized"):
    p = {"mean": normal() * 0.5, "log_scale": normal() * 0.5 - 2.0}
    x = GRID[rng.integers(0, 256, BATCH_SHAPE)]
  else:
    p = {"mu": jnp.exp(normal()) * 3.0,
         "theta": jnp.asarray(rng.uniform(0.5, 5.0, 5), jnp.float32)}
    if name == "zinb":
      p["pi_logits"] = normal()
    x = rng.poisson(3.0, BATCH_SHAPE) * (rng.uniform(size=BATCH_SHAPE) < 0.7)
  return jnp.asarray(x, jnp.float32), p


ELEMENTWISE = {
    "bernoulli": bernoulli_log_prob,
    "gaussian": gaussian_log_prob,
    "discretized_logistic": discretized_logistic_log_prob,
    "discretized_gaussian": discretized_gaussian_log_prob,
    "nb": nb_log_prob,
    "zinb": zinb_log_prob,
}


# Heavy-tailed image likelihoods, tested in test_robust_likelihoods.py.
ROBUST = ("discretized_laplace", "discretized_student_t")


def test_registry_names_and_fields():
  assert lk.LIKELIHOODS.names() == sorted([*ELEMENTWISE, *ROBUST])
  expected = {"bernoulli": (("logits",), "binary"),
              "discretized_laplace": (("mean", "log_scale"), "unit_interval"),
              "discretized_student_t": (("mean", "log_scale"),
                                        "unit_interval"),
              "gaussian": (("mean", "log_scale"), "real"),
              "discretized_logistic": (("mean", "log_scale"), "unit_interval"),
              "discretized_gaussian": (("mean", "log_scale"), "unit_interval"),
              "nb": (("mu", "theta"), "counts"),
              "zinb": (("mu", "theta", "pi_logits"), "counts")}
  for name, (params, data) in expected.items():
    entry = lk.LIKELIHOODS.get(name)
    assert (entry.name, entry.params, entry.data) == (name, params, data)
  with pytest.raises(UnknownNameError, match="zinb"):
    lk.LIKELIHOODS.get("zinbb")


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_registry_log_prob_is_the_per_example_sum(name):
  entry = lk.LIKELIHOODS.get(name)
  x, params = example_params(name, np.random.default_rng(6))
  got = jax.jit(entry.log_prob)(x, params)
  values = ELEMENTWISE[name](x, *(params[k] for k in entry.params))
  assert got.shape == (4,)
  np.testing.assert_allclose(got, np.sum(as64(values), axis=(1, 2)),
                             rtol=1e-5)


MC_PARAMS = {
    "bernoulli": {"logits": [-2.0, 0.0, 0.5, 3.0]},
    "gaussian": {"mean": [-1.0, 0.0, 2.0, 5.0],
                 "log_scale": [-1.0, 0.0, 0.5, 1.0]},
    "discretized_logistic": {"mean": [-0.95, -0.2, 0.4, 1.1],
                             "log_scale": [-4.0, -2.0, -1.0, 0.0]},
    "discretized_gaussian": {"mean": [-0.95, -0.2, 0.4, 1.1],
                             "log_scale": [-4.0, -2.0, -1.0, 0.0]},
    "nb": {"mu": [0.5, 5.0, 50.0, 2.0], "theta": [0.5, 2.0, 10.0, 1e4]},
    "zinb": {"mu": [0.5, 5.0, 50.0, 2.0], "theta": [0.5, 2.0, 10.0, 1e4],
             "pi_logits": [-2.0, 0.0, 1.0, -30.0]},
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_sample_mean_matches_mean(name):
  """Monte Carlo mean of 20000 samples per feature is within 5 standard errors."""
  entry = lk.LIKELIHOODS.get(name)
  n = 20000
  params = {k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (n, 4))
            for k, v in MC_PARAMS[name].items()}
  x = as64(jax.jit(entry.sample)(jax.random.key(7), params))  # [n, 4]
  assert x.shape == (n, 4) and np.all(np.isfinite(x))
  mean = as64(jax.jit(entry.mean)(params))
  assert mean.shape == (n, 4)
  stderr = x.std(axis=0) / np.sqrt(n)
  assert np.all(np.abs(x.mean(axis=0) - mean[0]) < 5 * stderr + 1e-6), (
      x.mean(axis=0), mean[0], stderr)
  if entry.data == "binary":
    assert set(np.unique(x)) <= {0.0, 1.0}
  if entry.data == "counts":
    assert np.all(x >= 0) and np.all(x == np.round(x))
  if name == "nb":  # Var = mu + mu^2 / theta
    mu, theta = (np.array(MC_PARAMS[name][k]) for k in ("mu", "theta"))
    np.testing.assert_allclose(x.var(axis=0), mu + mu ** 2 / theta, rtol=0.1)
  if entry.data == "unit_interval":  # on the 8-bit grid
    u = (x + 1.0) * 127.5
    np.testing.assert_allclose(u, np.round(u), atol=1e-4)
    assert x.min() >= -1.0 and x.max() <= 1.0


@pytest.mark.parametrize("name", ["discretized_logistic", "discretized_gaussian"])
def test_discretized_mean_is_the_sum_over_bins(name):
  entry = lk.LIKELIHOODS.get(name)
  mean, log_scale = MC_PARAMS[name]["mean"], MC_PARAMS[name]["log_scale"]
  probs = np.exp(as64(ELEMENTWISE[name](*f32(GRID[:, None], mean, log_scale))))
  want = np.sum(GRID[:, None] * probs, axis=0)  # [4]
  got = jax.jit(entry.mean)({"mean": jnp.asarray(mean),
                            "log_scale": jnp.asarray(log_scale)})
  np.testing.assert_allclose(as64(got), want, atol=2e-5)


# ----------------------------------------------------------------------------
# Dispersion recovery by maximum likelihood.


def simulate(seed, mu, theta, pi=None, cells=4000):
  rng = np.random.default_rng(seed)
  counts = rng.poisson(rng.gamma(theta, mu / theta, size=(cells, len(mu))))
  if pi is not None:
    counts = np.where(rng.uniform(size=counts.shape) < pi, 0, counts)
  return jnp.asarray(counts, jnp.float32)  # [cells, genes]


def fit(name, counts, steps=300):
  """Maximises the summed log-likelihood over unconstrained parameters."""
  entry = lk.LIKELIHOODS.get(name)
  genes = counts.shape[1]
  init = {"log_mu": jnp.log(counts.mean(axis=0)), "log_theta": jnp.zeros(genes),
          "pi_logits": jnp.zeros(genes)}

  def loss(u):
    params = {"mu": jnp.exp(u["log_mu"]), "theta": jnp.exp(u["log_theta"]),
              "pi_logits": u["pi_logits"]}
    return -jnp.mean(entry.log_prob(counts, params))

  opt = optax.adam(0.1)

  @jax.jit
  def run(u):
    def step(carry, _):
      u, state = carry
      updates, state = opt.update(jax.grad(loss)(u), state, u)
      return (optax.apply_updates(u, updates), state), None
    (u, _), _ = jax.lax.scan(step, (u, opt.init(u)), None, length=steps)
    return u, jax.grad(loss)(u)

  u, grad = run(init)
  # At the optimum: the gradient of the per-cell mean log-likelihood vanishes.
  for g in jax.tree.leaves(grad):
    np.testing.assert_allclose(g, 0.0, atol=1e-3)
  return (np.exp(as64(u["log_mu"])), np.exp(as64(u["log_theta"])),
          special.expit(as64(u["pi_logits"])))


def test_nb_dispersion_is_recovered():
  mu, theta = np.array([0.5, 5.0, 50.0]), np.array([0.5, 2.0, 10.0])
  fit_mu, fit_theta, _ = fit("nb", simulate(0, mu, theta))
  np.testing.assert_allclose(fit_mu, mu, rtol=0.1)
  np.testing.assert_allclose(fit_theta, theta, rtol=0.2)


def test_zinb_dispersion_and_dropout_are_recovered():
  # Means high enough that the dropout zeros are distinguishable from NB zeros.
  mu, theta = np.array([5.0, 20.0, 50.0]), np.array([2.0, 5.0, 10.0])
  pi = np.array([0.1, 0.3, 0.5])
  fit_mu, fit_theta, fit_pi = fit("zinb", simulate(1, mu, theta, pi))
  np.testing.assert_allclose(fit_mu, mu, rtol=0.1)
  np.testing.assert_allclose(fit_theta, theta, rtol=0.2)
  np.testing.assert_allclose(fit_pi, pi, atol=0.05)
