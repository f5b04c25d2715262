"""Training state pytrees.

`TrainState` is Flax's, plus BatchNorm running statistics. `GANState` holds
the generator and discriminator TrainStates and an exponential moving average
(EMA) of the generator's parameters and statistics, used for sampling
(Karras et al. 2018, "Progressive Growing of GANs"; Yazici et al. 2019, "The
Unusual Effectiveness of Averaging in GAN Training"). Everything is a pytree,
updated inside one jitted step and saved whole by train/checkpoint.py.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from flax.training import train_state

PyTree = Any


class TrainState(train_state.TrainState):
  """Flax TrainState with BatchNorm statistics ({} when the model has none)."""

  batch_stats: PyTree = flax.struct.field(default_factory=dict)

  def variables(self, params: PyTree | None = None) -> dict[str, PyTree]:
    """The variable dict for `apply_fn`, optionally with other params."""
    v = {"params": self.params if params is None else params}
    if self.batch_stats:
      v["batch_stats"] = self.batch_stats
    return v


class GANState(flax.struct.PyTreeNode):
  """Generator + discriminator + EMA of the generator.

  Attributes:
    gen: generator TrainState; `gen.step` counts generator updates and is
      the run's step.
    disc: discriminator TrainState.
    ema_params: EMA of gen.params.
    ema_batch_stats: EMA of gen.batch_stats.
    augment_p: ADA's probability of each augmentation, or None.
  """

  gen: TrainState
  disc: TrainState
  ema_params: PyTree
  ema_batch_stats: PyTree
  # ADA's augmentation probability (a scalar) when it adapts; None (no leaf,
  # so checkpoints of runs without it keep their layout) otherwise.
  augment_p: PyTree = None

  @property
  def step(self) -> jax.Array:
    return self.gen.step

  def ema_variables(self) -> dict[str, PyTree]:
    v = {"params": self.ema_params}
    if self.ema_batch_stats:
      v["batch_stats"] = self.ema_batch_stats
    return v


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """Decay with warm-up: min(decay, (1 + step) / (10 + step)).

  Early in training the average follows the weights closely instead of
  remembering the random initialisation for ~1/(1-decay) steps.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))

