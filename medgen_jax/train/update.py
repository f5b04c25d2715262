"""One generic update for every family, through one gradient seam.

A family describes what to minimise as a per-example loss function

    loss_fn(params, batch, key) -> LossOutput(losses [batch], metrics, batch_stats)

and `update` turns it into a new TrainState with a gradient function:

    gradient_fn(loss_fn, params, batch, key) -> Gradient(loss, output, grads)

`mean_gradient` (the gradient of the batch mean, reduced in
objectives/reduce.py) is the only one today. Differentially private training
will be a second gradient function (per-example gradients by vmap, each
clipped to an L2 bound, summed, noised, divided by the expected batch size;
Abadi et al. 2016, "Deep Learning with Differential Privacy"), chosen by
`make_gradient_fn(config)` for every family at once. For that swap to be
valid a family's losses must be truly per example: no batch norm in the
model being updated (its statistics mix examples; `LossOutput.batch_stats`
is then None).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import optax

from medgen_jax.errors import ConfigError
from medgen_jax.objectives.reduce import mean_over_batch
from medgen_jax.train.state import TrainState

PyTree = Any


class LossOutput(NamedTuple):
  """What a per-example loss function returns.

  Attributes:
    losses: [batch] one loss per example.
    metrics: name -> scalar summaries to log (not differentiated).
    batch_stats: the model's new BatchNorm statistics, or None when it has
      none (required for per-example gradient functions).
  """

  losses: jax.Array
  metrics: Mapping[str, jax.Array] = {}
  batch_stats: PyTree = None


class Gradient(NamedTuple):
  """A gradient function's result: the reduced loss, the loss function's
  output and the gradient with respect to the params."""

  loss: jax.Array
  output: LossOutput
  grads: PyTree


PerExampleLoss = Callable[[PyTree, Mapping[str, jax.Array], jax.Array],
                          LossOutput]
GradientFn = Callable[[PerExampleLoss, PyTree, Mapping[str, jax.Array],
                       jax.Array], Gradient]


def mean_gradient(loss_fn: PerExampleLoss, params: PyTree,
                  batch: Mapping[str, jax.Array], key: jax.Array) -> Gradient:
  """The gradient of the mean per-example loss over the batch."""

  def mean_loss(p):
    out = loss_fn(p, batch, key)
    return mean_over_batch(out.losses), out

  (loss, out), grads = jax.value_and_grad(mean_loss, has_aux=True)(params)
  return Gradient(loss, out, grads)


def make_gradient_fn(config) -> GradientFn:
  """The gradient function a config asks for (the seam DP-SGD will use)."""
  if config.privacy.enabled:
    raise ConfigError("privacy.enabled: DP-SGD is not implemented yet")
  return mean_gradient


class UpdateInfo(NamedTuple):
  """Scalars of one update, for the family to name in its metrics."""

  loss: jax.Array
  grad_norm: jax.Array
  metrics: Mapping[str, jax.Array]


def update(state: TrainState, loss_fn: PerExampleLoss,
           batch: Mapping[str, jax.Array], key: jax.Array, *,
           gradient_fn: GradientFn = mean_gradient
           ) -> tuple[TrainState, UpdateInfo]:
  """One optimizer step of `state` on `loss_fn` over `batch`.

  Args:
    state: the TrainState to update (params, optimizer, BatchNorm stats).
    loss_fn: per-example loss of the params.
    batch: arrays sharing a leading example axis, passed to loss_fn.
    key: randomness of loss_fn.
    gradient_fn: how the per-example losses become a gradient.

  Returns:
    (new state, UpdateInfo(mean loss, gradient norm, loss_fn's metrics)).
  """
  g = gradient_fn(loss_fn, state.params, batch, key)
  new = state.apply_gradients(grads=g.grads)
  if g.output.batch_stats is not None:
    new = new.replace(batch_stats=g.output.batch_stats)
  return new, UpdateInfo(g.loss, optax.tree.norm(g.grads),
                         dict(g.output.metrics))
