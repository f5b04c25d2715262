"""The generic update: one gradient seam for every family."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from medgen_jax.objectives.reduce import mean_over_batch
from medgen_jax.train.state import TrainState
from medgen_jax.train.update import (Gradient, LossOutput, mean_gradient,
                                     update)


def _linear_loss(params, batch, key):
  """Squared error of a linear model: [batch] losses."""
  del key
  pred = batch["x"] @ params["w"] + params["b"]
  return LossOutput((pred - batch["y"]) ** 2, {"pred_mean": jnp.mean(pred)})


def _data():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((8, 3)).astype(np.float32)
  y = rng.standard_normal((8,)).astype(np.float32)
  params = {"w": jnp.asarray([0.5, -1.0, 2.0]), "b": jnp.asarray(0.3)}
  return params, {"x": jnp.asarray(x), "y": jnp.asarray(y)}


def test_mean_gradient_matches_hand_computation():
  params, batch = _data()
  g = mean_gradient(_linear_loss, params, batch, jax.random.key(0))
  x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
  r = x @ np.asarray(params["w"]) + 0.3 - y  # residuals
  assert float(g.loss) == pytest.approx(np.mean(r**2), rel=1e-6)
  np.testing.assert_allclose(g.grads["w"], 2 * x.T @ r / 8, rtol=1e-5)
  np.testing.assert_allclose(g.grads["b"], 2 * r.mean(), rtol=1e-5)


def per_example_mean_gradient(loss_fn, params, batch, key):
  """A gradient function of the kind DP-SGD needs: one gradient per example
  (vmap over single-example batches), then their mean."""
  def one(example, k):
    single = jax.tree.map(lambda a: a[None], example)
    return jax.grad(lambda p: loss_fn(p, single, k).losses[0])(params)

  n = jax.tree.leaves(batch)[0].shape[0]
  grads = jax.vmap(one)(batch, jax.random.split(key, n))
  out = loss_fn(params, batch, key)
  return Gradient(mean_over_batch(out.losses), out,
                  jax.tree.map(lambda g: g.mean(0), grads))


def test_gradient_function_is_the_one_swap():
  """Swapping the gradient function changes nothing else: for a loss that is
  truly per example, per-example gradients averaged equal the mean gradient,
  and `update` applies either the same way."""
  params, batch = _data()
  tx = optax.sgd(0.1)
  state = TrainState.create(apply_fn=None, params=params, tx=tx)
  a, info_a = update(state, _linear_loss, batch, jax.random.key(0))
  b, info_b = update(state, _linear_loss, batch, jax.random.key(0),
                     gradient_fn=per_example_mean_gradient)
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
  assert int(a.step) == 1 and float(info_a.loss) == pytest.approx(
      float(info_b.loss))
  g = mean_gradient(_linear_loss, params, batch, jax.random.key(0)).grads
  assert float(info_a.grad_norm) == pytest.approx(
      float(optax.tree.norm(g)), rel=1e-6)
  assert "pred_mean" in info_a.metrics


def test_update_keeps_batch_stats_from_the_loss():
  params, batch = _data()
  state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.1),
                            batch_stats={"mean": jnp.zeros(3)})

  def loss_with_stats(p, b, k):
    out = _linear_loss(p, b, k)
    return out._replace(batch_stats={"mean": jnp.mean(b["x"], 0)})

  new, _ = update(state, loss_with_stats, batch, jax.random.key(0))
  np.testing.assert_allclose(new.batch_stats["mean"], batch["x"].mean(0))
  same, _ = update(state, _linear_loss, batch, jax.random.key(0))
  np.testing.assert_array_equal(same.batch_stats["mean"], np.zeros(3))


def test_reduction_divides_by_the_batch_size():
  values = jnp.asarray([1.0, 2.0, 3.0, 4.0])
  assert float(mean_over_batch(values)) == pytest.approx(2.5)
  # Masked examples count as zero, but the normaliser stays the batch size
  # (never the data-dependent number of kept examples): (1 + 3) / 4.
  w = jnp.asarray([1.0, 0.0, 1.0, 0.0])
  assert float(mean_over_batch(values, w)) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="per-example"):
    mean_over_batch(jnp.ones((2, 2)))
