"""objectives/sequence.py against scipy, and the mask's exactness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from medgen_jax.objectives import sequence as seq


def _softplus(x):
  return np.log1p(np.exp(x))


def test_gaussian_head_matches_scipy():
  rng = np.random.default_rng(0)
  raw = rng.normal(size=(3, 4, 4)).astype(np.float32)   # C = 2
  y = rng.normal(size=(3, 4, 2)).astype(np.float32)
  head = seq.HEADS.get("gaussian")
  got = np.asarray(head.nll(jnp.asarray(raw), jnp.asarray(y)))
  scale = _softplus(raw[..., 2:]) + seq.MIN_SCALE
  want = -stats.norm.logpdf(y, raw[..., :2], scale).sum(-1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mdn_head_matches_a_hand_mixture():
  k, c = 3, 2
  head = seq.make_mdn(k)
  assert head.num_params(c) == k + 2 * k * c
  rng = np.random.default_rng(1)
  raw = rng.normal(size=(5, head.num_params(c))).astype(np.float32)
  y = rng.normal(size=(5, c)).astype(np.float32)
  got = np.asarray(head.nll(jnp.asarray(raw), jnp.asarray(y)))
  logits = raw[:, :k]
  w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  means = raw[:, k:k + k * c].reshape(5, k, c)
  scales = (_softplus(raw[:, k + k * c:]) + seq.MIN_SCALE).reshape(5, k, c)
  dens = stats.norm.pdf(y[:, None, :], means, scales).prod(-1)   # [5, K]
  np.testing.assert_allclose(got, -np.log((w * dens).sum(-1)), rtol=1e-4)
  mean = np.asarray(head.mean(jnp.asarray(raw)))
  np.testing.assert_allclose(mean, (w[..., None] * means).sum(1), rtol=1e-5)


@pytest.mark.parametrize("name", ["gaussian", "mdn"])
def test_temperature_zero_gives_the_most_likely_value(name):
  head = seq.HEADS.get(name)
  raw = jax.random.normal(jax.random.key(0), (4, head.num_params(3)))
  a = head.sample(jax.random.key(1), raw, 0.0)
  b = head.sample(jax.random.key(2), raw, 0.0)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  if name == "gaussian":
    np.testing.assert_allclose(np.asarray(a), np.asarray(head.mean(raw)))
  warm = head.sample(jax.random.key(1), raw, 1.0)
  assert not np.allclose(np.asarray(warm), np.asarray(a))


def test_gaussian_samples_follow_the_predicted_distribution():
  head = seq.HEADS.get("gaussian")
  raw = jnp.broadcast_to(jnp.asarray([1.5, _inv_softplus(0.5)]), (20000, 2))
  y = np.asarray(head.sample(jax.random.key(0), raw, 1.0))[:, 0]
  assert abs(y.mean() - 1.5) < 0.02 and abs(y.std() - 0.5) < 0.02
  half = np.asarray(head.sample(jax.random.key(0), raw, 0.5))[:, 0]
  assert abs(half.std() - 0.25) < 0.01


def _inv_softplus(s):
  return float(np.log(np.expm1(s - seq.MIN_SCALE)))


def _targets(head, rng, shape):
  """Valid values of a head's data kind: reals, classes 0..4, counts."""
  if head.data == "categorical":
    return rng.integers(0, 5, shape).astype(np.float32)
  if head.data == "counts":
    return rng.poisson(20.0, shape).astype(np.float32)
  return rng.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("name", ["gaussian", "mdn", "categorical", "zinb"])
def test_padded_steps_change_neither_loss_nor_gradient(name):
  head = seq.get_head(name, categories=5, log_mean=np.log(20.0))
  rng = np.random.default_rng(2)
  raw = jnp.asarray(rng.normal(size=(2, 6, head.num_params(2))), jnp.float32)
  y = _targets(head, rng, (2, 6, 2))
  mask = np.ones((2, 6), bool)
  mask[0, 4:] = False   # a padded tail
  mask[1, 2] = False    # a gap
  other = y.copy()
  other[~mask] = np.array([1e6, np.nan], np.float32)

  @jax.jit
  def loss_and_grad(r, target):
    return jax.value_and_grad(lambda r: seq.sequence_nll(
        head, r, target, jnp.asarray(mask)).sum())(r)

  l1, g1 = loss_and_grad(raw, y)
  l2, g2 = loss_and_grad(raw, other)
  assert np.isfinite(float(l2))
  np.testing.assert_array_equal(np.asarray(l1), np.asarray(l2))
  np.testing.assert_array_equal(np.asarray(g1), np.asarray(g2))
  # padded steps get no gradient at all; real steps do
  assert not np.asarray(g1)[~mask].any() and np.asarray(g1)[mask].any()
  # the loss is the sum over real steps of the per-step NLL
  per_step = np.asarray(head.nll(raw, jnp.asarray(y)))
  np.testing.assert_allclose(float(l1), per_step[mask].sum(), rtol=1e-5)


def test_categorical_head_is_the_cross_entropy_and_samples_its_softmax():
  head = seq.get_head("categorical", categories=4)
  assert head.num_params(2) == 8 and head.data == "categorical"
  rng = np.random.default_rng(3)
  raw = rng.normal(size=(6, 8)).astype(np.float32)        # 2 channels x 4
  y = rng.integers(0, 4, (6, 2)).astype(np.float32)
  logits = raw.reshape(6, 2, 4)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  want = -np.take_along_axis(logp, y.astype(int)[..., None], -1)[..., 0].sum(-1)
  got = np.asarray(head.nll(jnp.asarray(raw), jnp.asarray(y)))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # inputs: one-hot per channel, flattened
  hot = np.asarray(head.inputs(jnp.asarray([[2.0, 0.0]])))
  np.testing.assert_array_equal(hot, [[0, 0, 1, 0, 1, 0, 0, 0]])
  # temperature 0 = argmax; temperature 1 draws from the softmax
  np.testing.assert_array_equal(
      np.asarray(head.sample(jax.random.key(0), jnp.asarray(raw), 0.0)),
      logits.argmax(-1))
  one = jnp.broadcast_to(jnp.asarray([0.0, 1.0, 2.0, -1.0]), (100000, 4))
  draws = np.asarray(head.sample(jax.random.key(0), one, 1.0))[:, 0]
  p = np.exp([0.0, 1.0, 2.0, -1.0]) / np.exp([0.0, 1.0, 2.0, -1.0]).sum()
  freq = np.bincount(draws.astype(int), minlength=4) / draws.size
  assert stats.chisquare(freq * draws.size, p * draws.size).pvalue > 1e-3


@pytest.mark.parametrize("zero_inflated", [False, True])
def test_count_heads_match_scipy_and_their_samples(zero_inflated):
  log_mean = np.log(50.0)
  head = seq.make_counts(zero_inflated, log_mean)
  raw = np.asarray([0.3, 0.2, -1.0] if zero_inflated else [0.3, 0.2],
                   np.float32)
  mu = np.exp(log_mean + 0.3)
  theta = _softplus(0.2) + seq.MIN_THETA
  pi = 1 / (1 + np.exp(1.0)) if zero_inflated else 0.0
  ys = np.asarray([0.0, 1.0, 17.0, 80.0, 400.0], np.float32)
  nb = stats.nbinom.pmf(ys, theta, theta / (theta + mu))
  want = -np.log(np.where(ys == 0, pi + (1 - pi) * nb, (1 - pi) * nb))
  got = np.asarray(head.nll(jnp.broadcast_to(jnp.asarray(raw), (5, raw.size)),
                            jnp.asarray(ys)[:, None]))
  np.testing.assert_allclose(got, want, rtol=2e-4)
  many = jnp.broadcast_to(jnp.asarray(raw), (20000, raw.size))
  draws = np.asarray(head.sample(jax.random.key(0), many, 1.0))[:, 0]
  assert (draws == np.round(draws)).all() and draws.min() >= 0
  mean = (1 - pi) * mu
  assert abs(draws.mean() - mean) < 5 * draws.std() / np.sqrt(draws.size)
  np.testing.assert_allclose(
      np.asarray(head.sample(jax.random.key(0), many[:2], 0.0))[:, 0], mean,
      rtol=1e-5)
  # inputs: log1p(count) centred on the train log mean
  np.testing.assert_allclose(np.asarray(head.inputs(jnp.asarray([[49.0]]))),
                             [[np.log(50.0) - log_mean]], atol=1e-6)


def test_masked_mean_and_next_step_error_by_hand():
  v = jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  m = jnp.asarray([[True, False, True], [False, False, False]])
  np.testing.assert_allclose(np.asarray(seq.masked_mean_over_time(v, m)),
                             [2.0, 0.0])
  x = jnp.asarray([[[0.0], [1.0], [3.0], [7.0]]])
  pred = jnp.asarray([[[1.0], [2.0], [0.0], [9.0]]])
  mask = jnp.asarray([[True, True, True, False]])
  # pairs (0,1), (1,2): errors (1-1)^2 = 0 and (2-3)^2 = 1 -> mean 0.5
  np.testing.assert_allclose(
      np.asarray(seq.next_step_squared_error(pred, x, mask)), [0.5])
