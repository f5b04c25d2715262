"""make_optimizer: each named optimizer takes the step its definition says,
reading only its own documented fields."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
  (u,) = _updates(make_optimizer(_cfg("adam", b1=0.5), 0.1, 100),
                  [[2.0, -0.5]])
  np.testing.assert_allclose(u, [-0.1, 0.1], rtol=1e-5)


def test_rmsprop_uses_its_decay_not_adams_b2():
  # nu = (1 - decay) g^2 -> step = -lr g / sqrt(nu + eps).
  g = np.array([2.0, -0.5])
  (u,) = _updates(
      make_optimizer(_cfg("rmsprop", decay=0.8, b2=0.1), 0.1, 100), [g])
  np.testing.assert_allclose(u, -0.1 * g / np.sqrt(0.2 * g**2), rtol=1e-4)


def test_sgd_momentum_is_its_own_field():
  g = np.array([1.0, -2.0])
  plain = _updates(make_optimizer(_cfg("sgd", b1=0.5), 0.1, 100), [g, g])
  np.testing.assert_allclose(plain[1], -0.1 * g, rtol=1e-6)  # b1 ignored
  heavy = _updates(make_optimizer(_cfg("sgd", momentum=0.9), 0.1, 100), [g, g])
  np.testing.assert_allclose(heavy[1], -0.1 * (0.9 * g + g), rtol=1e-6)


def test_clipping_and_errors():
  (u,) = _updates(make_optimizer(_cfg("sgd", grad_clip=1.0), 1.0, 100),
                  [[30.0, 40.0]])  # norm 50 -> clipped to norm 1
  np.testing.assert_allclose(u, [-0.6, -0.8], rtol=1e-5)
  with pytest.raises(UnknownNameError, match="adam, rmsprop, sgd"):
    make_optimizer(_cfg("adamw"), 0.1, 100)
  with pytest.raises(ConfigError, match="learning rate"):
    make_optimizer(_cfg("adam"), 0.0, 100)


def _sgd_steps(n, train_steps=10, updates_per_step=1, **fields):
  """The step sizes plain SGD takes with gradient 1 over n updates."""
  tx = make_optimizer(_cfg("sgd", **fields), 0.5, train_steps,
                      updates_per_step)
  return np.array([-u[0] for u in _updates(tx, [[1.0, 1.0]] * n)])


def test_constant_schedule_keeps_the_plain_optimizer_state():
  # Old runs' checkpoints hold no schedule count: the constant schedule
  # passes the number itself, so the state has the plain optimizer's shape.
  tx = make_optimizer(_cfg("adam"), 0.1, 100)
  plain = optax.adam(0.1)
  params = {"w": jnp.zeros(2)}
  assert (jax.tree.structure(tx.init(params))
          == jax.tree.structure(plain.init(params)))
  np.testing.assert_allclose(_sgd_steps(4), [0.5] * 4)


def test_linear_decay_between_begin_and_end():
  # lr 0.5 held to step 4, then linear to 0.1 * 0.5 at step 8, then held.
  got = _sgd_steps(10, schedule="linear", decay_begin=4, decay_end=8,
                   final_lr_fraction=0.1)
  frac = np.clip((np.arange(10) - 4) / 4, 0, 1)
  np.testing.assert_allclose(got, 0.5 + (0.05 - 0.5) * frac, rtol=1e-6)


def test_cosine_decay_ends_at_train_steps_by_default():
  got = _sgd_steps(12, train_steps=10, schedule="cosine")
  t = np.minimum(np.arange(12), 10) / 10
  np.testing.assert_allclose(got, 0.5 * 0.5 * (1 + np.cos(np.pi * t)),
                             atol=1e-7)


def test_adam_before_the_decay_equals_constant_adam_bit_for_bit():
  # A run with --lr-decay-begin B takes exactly the constant run's steps up
  # to B, so its first B steps reproduce a constant-rate run.
  grads = [[0.3, -1.2], [2.0, 0.1], [-0.7, 0.4]]
  held = _updates(make_optimizer(_cfg("adam", schedule="cosine",
                                      decay_begin=3), 2e-4, 10), grads)
  plain = _updates(make_optimizer(_cfg("adam"), 2e-4, 10), grads)
  for a, b in zip(held, plain):
    np.testing.assert_array_equal(a, b)


def test_schedule_follows_training_steps_for_repeated_updates():
  # An optimizer applied 3 times per step (a GAN's D with --d-steps 3)
  # keeps the same rate within a step and decays over the run's steps.
  got = _sgd_steps(12, train_steps=4, updates_per_step=3, schedule="linear")
  np.testing.assert_allclose(got, np.repeat([0.5, 0.375, 0.25, 0.125], 3),
                             rtol=1e-6)


@pytest.mark.parametrize("fields, match", [
    ({"schedule": "step"}, "optimizer.schedule must be one of"),
    ({"schedule": "linear", "decay_begin": 10}, "decay_begin .10. must be"),
    ({"schedule": "cosine", "final_lr_fraction": 1.5}, "final_lr_fraction"),
    ({"schedule": "linear", "decay_end": -1}, "decay_end must be >= 0"),
])
def test_bad_schedules_are_refused(fields, match):
  with pytest.raises(ConfigError, match=match):
    make_optimizer(_cfg("adam", **fields), 0.1, 10)
