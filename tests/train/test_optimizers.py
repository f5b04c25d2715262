"""make_optimizer: each named optimizer takes the step its definition says,
reading only its own documented fields."""

import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.configs.base import get_base_config
from medgen_jax.errors import ConfigError, UnknownNameError
from medgen_jax.train.optimizers import make_optimizer


def _cfg(name, **fields):
  c = get_base_config().optimizer
  c.name = name
  for k, v in fields.items():
    c[k] = v
  return c


def _updates(tx, grads):
  params = {"w": jnp.zeros(2)}
  state = tx.init(params)
  out = []
  for g in grads:
    u, state = tx.update({"w": jnp.asarray(g)}, state, params)
    out.append(np.asarray(u["w"]))
  return out


def test_adam_first_step_is_minus_lr_times_sign():
  # Bias-corrected Adam's first step is -lr * g / (|g| + eps).
  (u,) = _updates(make_optimizer(_cfg("adam", b1=0.5), 0.1), [[2.0, -0.5]])
  np.testing.assert_allclose(u, [-0.1, 0.1], rtol=1e-5)


def test_rmsprop_uses_its_decay_not_adams_b2():
  # nu = (1 - decay) g^2 -> step = -lr g / sqrt(nu + eps).
  g = np.array([2.0, -0.5])
  (u,) = _updates(make_optimizer(_cfg("rmsprop", decay=0.8, b2=0.1), 0.1), [g])
  np.testing.assert_allclose(u, -0.1 * g / np.sqrt(0.2 * g**2), rtol=1e-4)


def test_sgd_momentum_is_its_own_field():
  g = np.array([1.0, -2.0])
  plain = _updates(make_optimizer(_cfg("sgd", b1=0.5), 0.1), [g, g])
  np.testing.assert_allclose(plain[1], -0.1 * g, rtol=1e-6)  # b1 ignored
  heavy = _updates(make_optimizer(_cfg("sgd", momentum=0.9), 0.1), [g, g])
  np.testing.assert_allclose(heavy[1], -0.1 * (0.9 * g + g), rtol=1e-6)


def test_clipping_and_errors():
  (u,) = _updates(make_optimizer(_cfg("sgd", grad_clip=1.0), 1.0),
                  [[30.0, 40.0]])  # norm 50 -> clipped to norm 1
  np.testing.assert_allclose(u, [-0.6, -0.8], rtol=1e-5)
  with pytest.raises(UnknownNameError, match="adam, rmsprop, sgd"):
    make_optimizer(_cfg("adamw"), 0.1)
  with pytest.raises(ConfigError, match="learning rate"):
    make_optimizer(_cfg("adam"), 0.0)
