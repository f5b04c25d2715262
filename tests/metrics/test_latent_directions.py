"""Tests of medgen_jax/metrics/latent_directions.py against known answers.

The "generator + classifier" is linear: score(z) = w.z + b with a known w,
so the true latent direction is w / |w| and every score along a walk can be
computed by hand.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.errors import ConfigError, UnknownNameError
from medgen_jax.metrics import latent_directions as ld

D = 8
W = np.array([1.5, -2.0, 0.5, 0.0, 1.0, 0.25, -0.75, 3.0])
B = 0.4
U = W / np.linalg.norm(W)


def _z(n=2000, seed=0, d=D):
  return np.random.default_rng(seed).normal(size=(n, d))


def _score(z):
  return np.asarray(z, np.float64) @ W + B


def _cos(a, b):
  return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("method", ["logistic", "mean_difference"])
def test_class_direction_recovers_linear_classifier(method):
  z = _z()
  scores = _score(z)
  out = ld.class_direction(z, scores, method=method)
  assert out["direction"].shape == (D,)
  np.testing.assert_allclose(np.linalg.norm(out["direction"]), 1.0, rtol=1e-6)
  assert _cos(out["direction"], U) > 0.95
  n1 = int(np.sum(scores > 0))
  assert out["n_per_class"] == [2000 - n1, n1]
  assert out["method"] == method and out["converged"]
  # fit_accuracy is that of the returned boundary, counted by hand.
  side = z @ out["direction"].astype(np.float64) + out["offset"] > 0
  np.testing.assert_allclose(out["fit_accuracy"],
                             np.mean(side == (scores > 0)), atol=1e-3)
  assert out["fit_accuracy"] > 0.95


def test_logistic_is_nearly_the_true_boundary_on_separable_data():
  z = _z()
  out = ld.class_direction(z, _score(z), l2=1e-4)
  assert _cos(out["direction"], U) > 0.995
  # The boundary u.z + c = 0 is w.z + b = 0: c = b / |w|.
  np.testing.assert_allclose(out["offset"], B / np.linalg.norm(W), atol=0.05)
  assert out["fit_accuracy"] > 0.99
  assert 0 < out["steps"] < 100


def test_mean_difference_offset_is_the_midpoint_of_the_class_means():
  z = _z(500, seed=3)
  y = _score(z) > 0
  m0, m1 = z[~y].mean(0), z[y].mean(0)
  u = (m1 - m0) / np.linalg.norm(m1 - m0)
  out = ld.class_direction(z, _score(z), method="mean_difference")
  np.testing.assert_allclose(out["direction"], u, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["offset"], -u @ (m0 + m1) / 2, rtol=1e-10)
  np.testing.assert_allclose(out["fit_accuracy"],
                             np.mean((z @ u - u @ (m0 + m1) / 2 > 0) == y))


def test_logistic_matches_scikit_learn_on_noisy_labels():
  sklearn_lm = pytest.importorskip("sklearn.linear_model")
  rng = np.random.default_rng(1)
  z = _z(800, seed=1)
  scores = _score(z) + rng.normal(scale=2.0, size=800)   # overlapping classes
  l2 = 1e-2
  out = ld.class_direction(z, scores, l2=l2)
  # sklearn minimises C sum(loss) + |w|^2 / 2, i.e. ours with C = 1 / (n l2).
  ref = sklearn_lm.LogisticRegression(C=1.0 / (800 * l2), tol=1e-10,
                                      max_iter=10_000).fit(z, scores > 0)
  w_ref = ref.coef_[0]
  np.testing.assert_allclose(out["direction"], w_ref / np.linalg.norm(w_ref),
                             atol=1e-4)
  np.testing.assert_allclose(out["offset"],
                             ref.intercept_[0] / np.linalg.norm(w_ref),
                             atol=1e-4)
  assert _cos(out["direction"], U) > 0.95
  assert 0.6 < out["fit_accuracy"] < 0.95                # noisy: not perfect


def test_integer_labels_equal_thresholded_scores():
  z = _z(300, seed=2)
  scores = _score(z)
  from_scores = ld.class_direction(z, scores)
  for labels in ((scores > 0).astype(np.int32), scores > 0):
    from_labels = ld.class_direction(z, labels)
    np.testing.assert_array_equal(from_labels["direction"],
                                  from_scores["direction"])
    assert from_labels["offset"] == from_scores["offset"]


def test_gradient_direction_is_exact_for_a_linear_score():
  w, b = jnp.asarray(W, jnp.float32), jnp.float32(B)
  linear = lambda z: z @ w + b                           # noqa: E731
  u = ld.gradient_direction(linear, _z(64, seed=4))
  assert u.shape == (D,)
  assert _cos(u, U) > 0.9999


def test_gradient_direction_averages_per_code_gradients():
  # f(z) = sum_k a_k z_k^2 has gradient 2 a * z at each code: the mean
  # gradient is 2 a * mean(z), computed here by hand.
  a = np.linspace(-1.0, 2.0, D)
  a_j = jnp.asarray(a, jnp.float32)
  quadratic = lambda z: jnp.sum(a_j * z * z, axis=-1)  # noqa: E731
  z = _z(50, seed=5) + 0.5
  expected = 2 * a * z.mean(0)
  expected /= np.linalg.norm(expected)
  np.testing.assert_allclose(ld.gradient_direction(quadratic, z), expected,
                             atol=1e-5)
  np.testing.assert_allclose(ld.gradient_direction(quadratic, z, batch_size=16),
                             expected, atol=1e-5)


def test_walk_values_by_hand():
  z0 = np.array([[1.0, 0.0], [0.0, 2.0]])
  codes = ld.walk(z0, [3.0, 4.0], [-1.0, 0.0, 2.0])     # u = [0.6, 0.8]
  assert codes.shape == (2, 3, 2) and codes.dtype == np.float32
  expected = np.array([[[0.4, -0.8], [1.0, 0.0], [2.2, 1.6]],
                       [[-0.6, 1.2], [0.0, 2.0], [1.2, 3.6]]])
  np.testing.assert_allclose(codes, expected, rtol=1e-6)
  # One code [d] walks as [1, d].
  np.testing.assert_allclose(ld.walk(z0[0], [3.0, 4.0], [2.0]),
                             [[[2.2, 1.6]]], rtol=1e-6)


def test_walk_keep_norm_rescales_to_the_starting_norm():
  z0 = np.array([[1.0, 0.0], [0.0, 2.0]])
  codes = ld.walk(z0, [0.0, 1.0], [0.0, 1.0, -2.0], keep_norm=True)
  # Row 0: (1, a) * 1 / sqrt(1 + a^2); row 1: (0, 2 + a) * 2 / |2 + a|,
  # and (0, 0) at a = -2 stays 0.
  s = 1 / np.sqrt(2.0)
  expected = np.array([[[1.0, 0.0], [s, s], [1 / np.sqrt(5), -2 / np.sqrt(5)]],
                       [[0.0, 2.0], [0.0, 2.0], [0.0, 0.0]]])
  np.testing.assert_allclose(codes, expected, rtol=1e-6, atol=1e-7)


def test_walk_effect_matches_hand_computed_scores():
  z0 = _z(200, seed=6)
  alphas = [-3.0, -1.0, 0.0, 1.0, 3.0]
  effect = ld.walk_effect(_score, z0, 2 * U, alphas,
                          target_name="pneumonia")
  by_hand = np.stack([(z0 + a * U) @ W + B for a in alphas], axis=1)  # [n, a]
  np.testing.assert_allclose(effect["scores"], by_hand, rtol=1e-5, atol=1e-5)
  # Mean grows by exactly |w| per unit of alpha; the spread does not change.
  np.testing.assert_allclose(
      effect["mean_score"],
      z0.mean(0) @ W + B + np.array(alphas) * np.linalg.norm(W), atol=1e-4)
  np.testing.assert_allclose(effect["std_score"], np.std(z0 @ W), rtol=1e-4)
  assert np.all(np.diff(effect["mean_score"]) > 0)
  fraction = np.mean(by_hand > 0, axis=0)
  np.testing.assert_allclose(effect["fraction_target"], fraction)
  assert fraction[0] < 0.2 and fraction[-1] > 0.8
  assert effect["summary"] == (
      f"moving +3 along the direction takes the pneumonia fraction from "
      f"{fraction[2]:.2f} to {fraction[4]:.2f} (mean score "
      f"{by_hand[:, 2].mean():.2f} -> {by_hand[:, 4].mean():.2f})")


def test_walk_effect_along_the_fitted_direction():
  z = _z()
  u = ld.class_direction(z, _score(z))["direction"]
  effect = ld.walk_effect(_score, z[:100], u, np.linspace(-3, 3, 7))
  assert np.all(np.diff(effect["mean_score"]) > 0)
  assert np.all(np.diff(effect["fraction_target"]) >= 0)


@pytest.mark.parametrize("make_args, match", [
    (lambda z: (z, np.abs(_score(z)) + 1), "all 50 codes are class 1"),
    (lambda z: (z, -np.abs(_score(z)) - 1), "all 50 codes are class 0"),
    (lambda z: (z, np.zeros(50, np.int64)), "class 0"),
    (lambda z: (z, _score(z)[:40]), r"expected shape \[50\]"),
    (lambda z: (z, _score(z)[:, None]), r"expected shape \[50\]"),
    (lambda z: (z[0], _score(z)), r"shape \[n, d\]"),
    (lambda z: (z, np.arange(50) % 3), "must be 0 or 1"),
    (lambda z: (np.where(z > 2, np.nan, z), _score(z)), "finite"),
])
def test_class_direction_errors(make_args, match):
  with pytest.raises(ConfigError, match=match):
    ld.class_direction(*make_args(_z(50, seed=7)))


def test_bad_settings_raise():
  z = _z(50, seed=8)
  with pytest.raises(UnknownNameError, match="logistic, mean_difference"):
    ld.class_direction(z, _score(z), method="svm")
  with pytest.raises(ConfigError, match="l2"):
    ld.class_direction(z, _score(z), l2=0.0)
  with pytest.raises(ConfigError, match=r"direction: expected shape \[8\]"):
    ld.walk(z, np.ones(3), [1.0])
  with pytest.raises(ConfigError, match="non-zero"):
    ld.walk(z, np.zeros(D), [1.0])
  with pytest.raises(ConfigError, match="alphas"):
    ld.walk(z, U, [[1.0, 2.0]])
  with pytest.raises(ConfigError, match=r"score_fn: expected one score"):
    ld.walk_effect(lambda c: _score(c)[:, None], z, U, [0.0, 1.0])
  with pytest.raises(ConfigError, match=r"score_fn: expected one score"):
    ld.gradient_direction(lambda c: c, z)
  with pytest.raises(ConfigError, match="norm 0"):
    ld.gradient_direction(lambda c: jnp.sum(c * 0.0, axis=-1), z)
