"""Tests of medgen_jax/metrics/attribution.py against known answers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from medgen_jax import outputs
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.metrics import attribution


# Inputs and weights come from numpy: each eager jax.random call would
# compile its own small program, which is most of a tiny test's time.


def _normal(seed, *shape):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape),
                     jnp.float32)


def _tanh_layer(d=6, h=5, seed=0):
  """f(x) = sum_j tanh(x W)_j: [b, d] -> [b], smooth and nonlinear."""
  w = _normal(seed, d, h) / np.sqrt(d)
  return lambda x: jnp.sum(jnp.tanh(x @ w), axis=-1)


class _TinyCNN(nn.Module):
  """8x8x1 images -> one logit per image (smooth activations)."""

  @nn.compact
  def __call__(self, x):
    x = nn.gelu(nn.Conv(4, (3, 3))(x))
    x = nn.gelu(nn.Conv(4, (3, 3), strides=2)(x))
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def _sum_per_example(a):
  return np.asarray(a).reshape(len(a), -1).sum(1)


def _assert_complete(f, x, baseline, attr, delta, rtol):
  gain = np.asarray(f(x) - f(baseline))
  assert np.all(np.abs(gain) > 0.05)         # a gain worth explaining
  np.testing.assert_allclose(_sum_per_example(attr), gain, rtol=rtol)
  np.testing.assert_allclose(delta, _sum_per_example(attr) - gain,
                             atol=1e-5)


def test_completeness_tanh_layer():
  f = _tanh_layer()
  x = _normal(1, 4, 6) * 2.0
  attr, delta = attribution.integrated_gradients(f, x, steps=128)
  assert attr.shape == x.shape and delta.shape == (4,)
  _assert_complete(f, x, jnp.zeros_like(x), attr, delta, rtol=1e-3)
  # Too few steps leave a gap that delta reports.
  _, coarse = attribution.integrated_gradients(f, x, steps=3)
  assert np.max(np.abs(coarse)) > 10 * np.max(np.abs(delta))


@pytest.mark.parametrize("method", ["riemann_trapezoid", "gauss_legendre"])
def test_completeness_flax_cnn(method):
  model = _TinyCNN()
  images = jnp.tanh(_normal(2, 3, 8, 8, 1))
  # Flax's shapes, filled from numpy (scaled by fan-in), skip init's RNG.
  shapes = jax.eval_shape(model.init, jax.random.key(3), images)
  rng = np.random.default_rng(3)
  params = jax.tree.map(
      lambda s: jnp.asarray(rng.normal(size=s.shape)
                            / np.sqrt(np.prod(s.shape[:-1])), jnp.float32),
      shapes)
  f = lambda x: model.apply(params, x)  # noqa: E731
  baseline = -jnp.ones((1, 8, 8, 1))   # black, broadcast over the batch
  attr, delta = attribution.integrated_gradients(f, images, baseline,
                                                 steps=128, method=method)
  _assert_complete(f, images, jnp.broadcast_to(baseline, images.shape), attr,
                   delta, rtol=1e-3)


def test_linear_function_is_explained_exactly():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=7), jnp.float32)
  f = lambda x: x @ w  # noqa: E731
  x = jnp.asarray(rng.normal(size=(3, 7)), jnp.float32)
  baseline = jnp.asarray(rng.normal(size=(3, 7)), jnp.float32)
  attr, delta = attribution.integrated_gradients(f, x, baseline, steps=16)
  np.testing.assert_allclose(attr, w * (x - baseline), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(delta, 0.0, atol=1e-5)
  w3 = np.broadcast_to(w, x.shape)
  np.testing.assert_allclose(attribution.saliency(f, x), w3, atol=1e-6)
  key = jax.random.key(4)
  np.testing.assert_allclose(attribution.smoothgrad(f, x, key), w3,
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(
      attribution.smoothgrad(f, x, key, squared=True), w3 ** 2, rtol=1e-5)


def test_irrelevant_features_get_exactly_zero():
  f = lambda x: x[:, 0] ** 2  # noqa: E731
  x = _normal(5, 4, 5) + 0.5
  attr, _ = attribution.integrated_gradients(f, x, steps=8)
  assert np.all(np.asarray(attr[:, 1:]) == 0.0)
  # The integrand 2 a x0^2 is linear in a, so the trapezoid rule is exact.
  np.testing.assert_allclose(attr[:, 0], x[:, 0] ** 2, rtol=1e-5)
  assert np.all(np.asarray(attribution.saliency(f, x)[:, 1:]) == 0.0)
  sg = attribution.smoothgrad(f, x, jax.random.key(6), num_samples=8)
  assert np.all(np.asarray(sg[:, 1:]) == 0.0)
  assert np.all(np.asarray(sg[:, 0]) != 0.0)


def test_gauss_legendre_is_exact_on_polynomial_paths():
  f = lambda x: jnp.sum(x ** 3, axis=-1)  # noqa: E731
  x = jnp.asarray([[1.0, -2.0, 0.5], [3.0, 1.5, -1.0]])
  # On the path a x the integrand 3 a^2 x^3 has degree 2 in a: 2 Gauss
  # points are exact, 4 trapezoid points are not.
  exact, _ = attribution.integrated_gradients(f, x, steps=2,
                                              method="gauss_legendre")
  np.testing.assert_allclose(exact, x ** 3, rtol=1e-6)
  rough, _ = attribution.integrated_gradients(f, x, steps=4)
  assert np.max(np.abs(rough - x ** 3)) > 1e-2


def test_smoothgrad_of_relu_is_the_normal_cdf():
  f = lambda x: jnp.sum(jax.nn.relu(x), axis=-1)  # noqa: E731
  near_zero = np.linspace(-0.3, 0.3, 14, dtype=np.float32)
  # Each example spans [-1, 1], so sigma = noise_level * 2 = 0.3 exactly.
  row = np.concatenate([[-1.0, 1.0], near_zero]).astype(np.float32)
  x = jnp.asarray(np.stack([row, row[::-1]]))
  n = 4096
  sg = np.asarray(attribution.smoothgrad(f, x, jax.random.key(7),
                                         num_samples=n, noise_level=0.15,
                                         batch_size=2 * 1024))
  expected = stats.norm.cdf(np.asarray(x) / 0.3)
  tolerance = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-3
  assert np.all(np.abs(sg - expected) <= tolerance)
  assert np.abs(sg[0, 8] - 0.5) < 0.05     # x = 0.0: a coin flip


def test_chunking_does_not_change_results():
  f = _tanh_layer()
  x = _normal(8, 4, 6)
  full, delta = attribution.integrated_gradients(f, x, steps=10)
  # 3 points per call (12 inputs // 4 examples): 10 points pad to 12.
  chunked, delta_c = attribution.integrated_gradients(f, x, steps=10,
                                                      batch_size=12)
  np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(delta_c, delta, atol=1e-5)
  key = jax.random.key(9)
  np.testing.assert_allclose(
      attribution.smoothgrad(f, x, key, num_samples=5, batch_size=8),
      attribution.smoothgrad(f, x, key, num_samples=5), rtol=1e-5,
      atol=1e-6)


def test_series_and_volumes():
  rng = np.random.default_rng(1)
  series = jnp.asarray(rng.normal(size=(2, 20, 3)), jnp.float32)
  w_series = jnp.asarray(rng.normal(size=(20, 3)), jnp.float32)
  f_series = lambda s: jnp.sum(jnp.tanh(s * w_series), axis=(1, 2))  # noqa
  attr, delta = attribution.integrated_gradients(f_series, series, steps=32)
  assert attr.shape == series.shape and delta.shape == (2,)
  assert np.max(np.abs(delta)) < 1e-2
  assert attribution.smoothgrad(f_series, series, jax.random.key(0),
                                num_samples=4).shape == series.shape

  volumes = jnp.asarray(rng.normal(size=(2, 4, 4, 4, 1)), jnp.float32)
  f_volume = lambda v: jnp.sum(jnp.sin(v), axis=(1, 2, 3, 4))  # noqa: E731
  attr_v, delta_v = attribution.integrated_gradients(f_volume, volumes,
                                                     steps=32)
  assert attr_v.shape == volumes.shape and delta_v.shape == (2,)
  assert np.max(np.abs(delta_v)) < 1e-2
  assert attribution.saliency(f_volume, volumes).shape == volumes.shape
  picture = attribution.overlay(volumes / 3, attr_v)
  assert picture.shape == (2, 4, 3 * 4 + 2, 3)

  maps = attribution.series_map(attr)
  assert maps.shape == (2, 3, 20)
  assert maps.min() >= -1 and maps.max() <= 1 and np.abs(maps).max() == 1
  np.testing.assert_array_equal(np.sign(maps),
                                np.sign(np.asarray(attr)).transpose(0, 2, 1))
  strip = attribution.series_overlay(series, attr, height_per_channel=10,
                                     strip_height=4, width=100)
  # Per example: 1 + 3 * 10 trace rows, 3 * 4 strip rows; 2 between them.
  assert strip.shape == (1, 2 * (31 + 12) + 2, 100, 3)
  assert strip.min() >= -1 and strip.max() <= 1


def test_overlay_colours_and_grid(tmp_path):
  rng = np.random.default_rng(2)
  for channels in (1, 3):
    images = rng.uniform(-1, 1, (2, 6, 6, channels)).astype(np.float32)
    attr = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    attr[:, :2] = 0.0
    picture = attribution.overlay(images, attr)
    assert picture.shape == (2, 6, 6, 3) and picture.dtype == np.float32
    assert picture.min() >= -1 and picture.max() <= 1
    total = attr.sum(-1)
    red, blue = picture[..., 0], picture[..., 2]
    assert np.all(red[total > 0] > blue[total > 0])
    assert np.all(blue[total < 0] > red[total < 0])
    np.testing.assert_allclose(red[total == 0], blue[total == 0])
  assert outputs.save_image_grid(tmp_path / "ig.png", picture).exists()


def test_compiles_once_per_shape():
  traces = []
  w = jnp.arange(6.0)

  def f(x):
    traces.append(x.shape)       # runs only while jax traces f
    return jnp.tanh(x) @ w

  x = _normal(10, 3, 6)
  attribution.integrated_gradients(f, x, steps=8)
  first = len(traces)
  assert first > 0
  attribution.integrated_gradients(f, x + 1.0, steps=8,
                                   baseline=jnp.ones_like(x))
  assert len(traces) == first
  attribution.integrated_gradients(f, x[:2], steps=8)  # a new shape traces
  assert len(traces) > first


def test_bad_arguments():
  f = _tanh_layer()
  x = jnp.ones((2, 6))
  with pytest.raises(ConfigError, match="unknown method"):
    attribution.integrated_gradients(f, x, method="simpson")
  with pytest.raises(DataError, match="one scalar per example"):
    attribution.saliency(lambda v: jnp.tanh(v), x)
  with pytest.raises(DataError, match="does not broadcast"):
    attribution.integrated_gradients(f, x, baseline=jnp.zeros((3, 6)))
