"""make_optimizer: each named optimizer takes the step its definition says."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from medgen_jax.errors import ConfigError, UnknownNameError
from medgen_jax.train.optimizers import make_optimizer


def _cfg(name, grad_clip=0.0):
  return ml_collections.ConfigDict(
      {"name": name, "b1": 0.5, "b2": 0.9, "grad_clip": grad_clip})


def _first_update(tx, g):
  params = {"w": jnp.zeros(2)}
  updates, _ = tx.update({"w": g}, tx.init(params), params)
  return np.asarray(updates["w"])


def test_adam_first_step_is_minus_lr_times_sign():
  # Bias-corrected Adam's first step is -lr * g / (|g| + eps).
  u = _first_update(make_optimizer(_cfg("adam"), 0.1), jnp.array([2.0, -0.5]))
  np.testing.assert_allclose(u, [-0.1, 0.1], rtol=1e-5)


def test_rmsprop_first_step():
  # nu = (1 - decay) g^2 -> step = -lr g / sqrt(nu + eps).
  g = jnp.array([2.0, -0.5])
  u = _first_update(make_optimizer(_cfg("rmsprop"), 0.1), g)
  np.testing.assert_allclose(u, -0.1 * g / np.sqrt(0.1 * g**2), rtol=1e-4)


def test_clipping_and_errors():
  g = jnp.array([30.0, 40.0])  # norm 50 -> clipped to norm 1
  u = _first_update(make_optimizer(_cfg("sgd", grad_clip=1.0), 1.0), g)
  np.testing.assert_allclose(u, [-0.6, -0.8], rtol=1e-5)
  with pytest.raises(UnknownNameError, match="adam, rmsprop, sgd"):
    make_optimizer(_cfg("adamw"), 0.1)
  with pytest.raises(ConfigError, match="learning rate"):
    make_optimizer(_cfg("adam"), 0.0)
