"""`--blur-augment`: the per-example Gaussian blur matches scipy for the
std each example drew, is the identity at std 0, and a blur-augmented step
sees blurred images (its loss differs from the plain step's) and is refused
out of range in one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from medgen_jax.configs import classifier as classifier_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError
from medgen_jax.families.classifier import ClassifierTask
from medgen_jax.families.classifier.step import random_blur


def test_each_example_gets_the_scipy_blur_of_its_own_std():
  x = np.random.default_rng(0).random((6, 11, 9, 1)).astype(np.float32)
  key, max_sigma = jax.random.key(4), 1.5
  got = np.asarray(random_blur(key, jnp.asarray(x), max_sigma))
  sigma = np.asarray(jax.random.uniform(key, (6,), maxval=max_sigma))
  assert np.ptp(sigma) > 0.3   # the examples drew different stds
  radius = 5                   # ceil(3 * 1.5)
  for i in range(6):
    want = gaussian_filter(x[i, ..., 0].astype(np.float64), sigma[i],
                           mode="nearest", truncate=radius / sigma[i])
    np.testing.assert_allclose(got[i, ..., 0], want, atol=1e-5)


def test_zero_std_is_the_identity_and_3d_works():
  x = jnp.asarray(np.random.default_rng(1).random((2, 5, 6, 4, 1)),
                  jnp.float32)
  np.testing.assert_array_equal(np.asarray(random_blur(jax.random.key(0), x,
                                                       0.0)), np.asarray(x))
  y = np.asarray(random_blur(jax.random.key(0), x, 1.0))
  assert y.shape == x.shape
  # A blur averages: it keeps values inside the input's range and smooths.
  assert y.min() >= float(x.min()) - 1e-6 and y.max() <= float(x.max()) + 1e-6
  assert np.abs(np.diff(y, axis=1)).mean() < np.abs(np.diff(x, axis=1)).mean()


def _config(blur):
  c = classifier_config.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train, c.data.phantoms.num_val = 64, 16
  c.data.phantoms.num_test = 16
  c.classifier.width, c.classifier.feature_dim = 4, 8
  c.classifier.blur = blur
  c.train.num_devices = 1
  return c


def test_the_augmented_step_sees_blurred_images():
  c = _config(0.0)
  ds = load_dataset(c.data)
  plain = ClassifierTask(c, ds)
  blurred = ClassifierTask(_config(1.0), ds)
  state = jax.jit(plain.init_state)(jax.random.key(0))
  train = ds.split("train")
  batch = plain.make_batch(train, IndexSampler(len(train), 16, seed=0), 0)
  key = jax.random.key(2)
  _, m_plain = jax.jit(plain.train_step)(state, batch, key)
  _, m_blur = jax.jit(blurred.train_step)(state, batch, key)
  assert np.isfinite(float(m_blur["loss"]))
  assert float(m_blur["loss"]) != float(m_plain["loss"])


@pytest.mark.parametrize("value", [-0.5, 9.0])
def test_out_of_range_blur_is_refused(value):
  with pytest.raises(ConfigError, match=r"classifier.blur \(--blur-augment\)"
                     ) as e:
    ClassifierTask.validate_config(_config(value))
  assert "\n" not in str(e.value)
