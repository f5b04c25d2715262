"""GAN objectives against hand computations and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.errors import UnknownNameError
from medgen_jax.objectives import minimax

REAL = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
FAKE = np.array([-0.3, 1.2, 0.0, -4.0], np.float32)


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_minimax_value_matches_definition():
  want = np.log(sigmoid(REAL)) + np.log(1.0 - sigmoid(FAKE))
  got = minimax.minimax_value(REAL, FAKE)
  assert got.shape == (4,)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(minimax.minimax_discriminator_loss(REAL, FAKE),
                             -want, rtol=1e-6)


def test_minimax_value_at_indifferent_discriminator_is_minus_log4():
  # Goodfellow et al. 2014, Theorem 1: at D = 1/2 everywhere, V = -log 4.
  zeros = jnp.zeros(3)
  np.testing.assert_allclose(minimax.minimax_value(zeros, zeros), -np.log(4.0),
                             rtol=1e-6)


def test_generator_losses():
  np.testing.assert_allclose(minimax.minimax_generator_loss(FAKE),
                             np.log(1.0 - sigmoid(FAKE)), rtol=1e-6)
  np.testing.assert_allclose(minimax.nonsaturating_generator_loss(FAKE),
                             -np.log(sigmoid(FAKE)), rtol=1e-6)


def test_logit_losses_are_stable_at_extremes():
  big = jnp.array([80.0, -80.0])
  for v in (minimax.minimax_value(big, -big),
            minimax.nonsaturating_generator_loss(big),
            minimax.minimax_generator_loss(-big)):
    assert np.all(np.isfinite(v))
  np.testing.assert_allclose(minimax.nonsaturating_generator_loss(big)[1], 80.0,
                             rtol=1e-5)


def test_hinge_by_hand():
  r = jnp.array([0.5, 2.0, -1.0])
  f = jnp.array([-2.0, 0.5, 1.0])
  np.testing.assert_allclose(minimax.hinge_discriminator_loss(r, f),
                             [0.5, 1.5, 4.0])
  np.testing.assert_allclose(minimax.hinge_generator_loss(f), [2.0, -0.5, -1.0])


def test_wasserstein_by_hand():
  np.testing.assert_allclose(minimax.wasserstein_critic_loss(REAL, FAKE),
                             FAKE - REAL)
  np.testing.assert_allclose(minimax.wasserstein_generator_loss(FAKE), -FAKE)


def test_interpolate():
  real = jnp.ones((2, 3, 3, 1))
  fake = jnp.zeros((2, 3, 3, 1))
  x = minimax.interpolate(real, fake, jnp.array([0.25, 1.0]))
  np.testing.assert_allclose(x[0], 0.25)
  np.testing.assert_allclose(x[1], 1.0)


def _tanh_critic_case(seed: int, n: int, h: int, k: int):
  """critic(x) = tanh(flat(x) w) v on [n, h, h, 1] inputs: (critic in
  float32, the inputs, and each example's gradient by central differences
  in float64, one coordinate at a time: [n, h * h])."""
  rng = np.random.default_rng(seed)
  d = h * h
  w = rng.normal(size=(d, k)) / 3
  v = rng.normal(size=(k,))
  x = rng.normal(size=(n, h, h, 1))

  def critic(xb):  # [n, h, h, 1] -> [n]
    return jnp.tanh(xb.reshape(xb.shape[0], -1) @ jnp.asarray(w, jnp.float32)) \
        @ jnp.asarray(v, jnp.float32)

  f = lambda flat: np.tanh(flat @ w) @ v  # noqa: E731
  eps = 1e-6
  grads = np.array([[(f(x[i].reshape(1, d) + eps * e) -
                      f(x[i].reshape(1, d) - eps * e))[0] / (2 * eps)
                     for e in np.eye(d)[:, None, :]] for i in range(n)])
  return critic, jnp.asarray(x, jnp.float32), grads


def test_gradient_penalty_equals_finite_differences():
  critic, x, grads = _tanh_critic_case(0, n=5, h=4, k=7)
  got = minimax.gradient_penalty(critic, x)
  assert got.shape == (5,)
  want = (np.linalg.norm(grads, axis=1) - 1.0) ** 2
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _mixing_critic(xb):
  """||x_j||^2 + the mean of every pixel in the batch: mixes examples, as
  batch norm does."""
  flat = xb.reshape(xb.shape[0], -1)
  return jnp.sum(flat ** 2, axis=1) + jnp.mean(flat)


def test_gradient_penalty_is_per_example():
  # A critic that mixes examples (like batch norm) must not leak between
  # examples: each example's penalty equals the penalty computed alone.
  x = jax.random.normal(jax.random.key(0), (4, 3, 3, 1))
  batch = minimax.gradient_penalty(_mixing_critic, x)
  alone = jnp.stack([minimax.gradient_penalty(_mixing_critic, x[i:i + 1])[0]
                     for i in range(4)])
  np.testing.assert_allclose(batch, alone, rtol=1e-5)
  # Hand value: grad of sum(x^2) + mean over one example's 9 pixels.
  xi = np.asarray(x[0]).ravel()
  want = (np.linalg.norm(2 * xi + 1 / 9) - 1) ** 2
  np.testing.assert_allclose(batch[0], want, rtol=1e-5)


def test_r1_penalty_equals_finite_differences():
  critic, x, grads = _tanh_critic_case(1, n=4, h=3, k=5)
  got = minimax.r1_penalty(critic, x)
  assert got.shape == (4,)
  # Zero-centred: the squared norm itself, no "- 1".
  np.testing.assert_allclose(got, np.sum(grads ** 2, axis=1), rtol=1e-4,
                             atol=1e-7)


def test_r1_penalty_of_a_batch_coupled_critic_includes_the_coupling():
  # critic_j = ||x_j||^2 + mean(all pixels of the batch): the gradient of
  # sum_j critic_j at x_i is 2 x_i + n / (n * 9) = 2 x_i + 1/9, the slope
  # the generator's gradient sees through such a critic.
  x = jax.random.normal(jax.random.key(2), (4, 3, 3, 1))
  got = minimax.r1_penalty(_mixing_critic, x)
  flat = np.asarray(x).reshape(4, -1)
  want = np.sum((2 * flat + 1 / 9) ** 2, axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_registry_entries_and_unknown_name():
  assert set(minimax.GAN_LOSSES.names()) == {"minimax", "nonsaturating",
                                             "wgan-gp", "hinge"}
  assert minimax.GAN_LOSSES.get("wgan-gp").gradient_penalty
  with pytest.raises(UnknownNameError, match="did you mean|Did you mean"):
    minimax.GAN_LOSSES.get("hinges")
