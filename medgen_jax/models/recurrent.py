"""Recurrent models for multichannel physiological series (ECG, ABP, ...).

Every recurrent layer is a Flax cell run over time by `nn.RNN` (a scan, not a
Python loop). A stack's cells are also callable one step at a time
(`RecurrentStack.step`) with the same parameters, which is how sampling and
forecasting run under `jax.lax.scan` (families/_sequence.py).

Models:
  * `Autoregressive`: p(y_t | y_<t, condition) with an output head from
    objectives/sequence.py; trained teacher-forced, sampled step by step.
  * `SeriesGenerator` / `SeriesDiscriminator`: the recurrent GAN of Esteban
    et al. 2017 ("Real-valued (medical) time series generation with
    recurrent conditional GANs", RCGAN): noise per step -> RNN -> values;
    values -> RNN -> one logit per step.
  * `NextStep`: a recurrent next-step regressor, the supervisor of TimeGAN's
    supervised loss (Yoon et al. 2019).

No batch norm anywhere: every loss stays per example (DP-SGD later).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}
Carry = Any

# Per-step time inputs: kind -> features. "clock": the time of day (seconds
# since midnight) as the sine and cosine of its 24-h phase, so 23:59 and
# 00:01 are neighbours (actigraphy); "elapsed": hours since the series'
# start (lights-off for a night's hypnogram), divided by 8 (a night).
TIME_KINDS = {"clock": 2, "elapsed": 1}
DAY_SECONDS = 86400.0
NIGHT_HOURS = 8.0


def time_features(kind: str, seconds: jax.Array) -> jax.Array:
  """seconds [...] -> features [..., TIME_KINDS[kind]] (see TIME_KINDS)."""
  seconds = jnp.asarray(seconds, jnp.float32)
  if kind == "clock":
    phase = (2.0 * jnp.pi / DAY_SECONDS) * jnp.mod(seconds, DAY_SECONDS)
    return jnp.stack([jnp.sin(phase), jnp.cos(phase)], -1)
  if kind == "elapsed":
    return (seconds / (3600.0 * NIGHT_HOURS))[..., None]
  raise ValueError(f"unknown time kind {kind!r}; expected one of "
                   f"{sorted(TIME_KINDS)}")


def zero_carry(cell: str, batch: int, hidden: int) -> Carry:
  """The initial state of one cell: zeros ((c, h) for an LSTM)."""
  h = jnp.zeros((batch, hidden), jnp.float32)
  return (h, h) if cell == "lstm" else h


class RecurrentStack(nn.Module):
  """`layers` recurrent cells of `hidden` units, each over the whole sequence.

  Attributes:
    cell: "lstm" or "gru".
    hidden: units per layer.
    layers: number of stacked layers.
  """

  cell: str = "gru"
  hidden: int = 64
  layers: int = 2

  def setup(self):
    if self.cell not in CELLS:
      raise ValueError(f"unknown cell {self.cell!r}; expected one of "
                       f"{sorted(CELLS)}")
    self.cells = [CELLS[self.cell](features=self.hidden)
                  for _ in range(self.layers)]
    self.rnns = [nn.RNN(c) for c in self.cells]

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [batch, time, features] -> [batch, time, hidden] (last layer)."""
    for rnn in self.rnns:
      x = rnn(x)
    return x

  def initial_carry(self, batch: int) -> tuple[Carry, ...]:
    return tuple(zero_carry(self.cell, batch, self.hidden)
                 for _ in range(self.layers))

  def step(self, carry: Sequence[Carry],
           x: jax.Array) -> tuple[tuple[Carry, ...], jax.Array]:
    """One time step of every layer: x [batch, features] -> h [batch, hidden]."""
    new = []
    for c, cell in zip(carry, self.cells):
      c, x = cell(c, x)
      new.append(c)
    return tuple(new), x


class Condition(nn.Module):
  """A per-example condition vector from a class label and/or covariates.

  Attributes:
    num_classes: classes of `label` (0 = no label input).
    num_covariates: static covariates per example (0 = none).
    embed_dim: size of the label embedding.
  """

  num_classes: int = 0
  num_covariates: int = 0
  embed_dim: int = 8

  @nn.compact
  def __call__(self, label: jax.Array | None,
               covariates: jax.Array | None, batch: int) -> jax.Array:
    """-> [batch, d] (d = 0 when the model is unconditional)."""
    parts = [jnp.zeros((batch, 0), jnp.float32)]
    if self.num_classes:
      parts.append(nn.Embed(self.num_classes, self.embed_dim)(label))
    if self.num_covariates:
      parts.append(covariates.astype(jnp.float32))
    return jnp.concatenate(parts, axis=-1)


def _with_condition(x: jax.Array, cond: jax.Array) -> jax.Array:
  """Appends cond [b, d] to every step of x [b, t, f] (or x [b, f])."""
  if x.ndim == 3:
    cond = jnp.broadcast_to(cond[:, None, :],
                            x.shape[:2] + (cond.shape[-1],))
  return jnp.concatenate([x, cond], axis=-1)


class Autoregressive(nn.Module):
  """p(y_t | y_<t, c): inputs are the previous values and whether they were
  observed, so a gap is seen as a gap (a mask bit), not as zeros.

  Attributes:
    num_params: head parameters per step (head.num_params(channels)).
    cell, hidden, layers: the recurrent stack.
    num_classes, num_covariates: conditioning (see `Condition`).
  """

  num_params: int
  cell: str = "gru"
  hidden: int = 64
  layers: int = 2
  num_classes: int = 0
  num_covariates: int = 0

  def setup(self):
    self.stack = RecurrentStack(self.cell, self.hidden, self.layers)
    self.condition = Condition(self.num_classes, self.num_covariates)
    self.out = nn.Dense(self.num_params)

  @staticmethod
  def shift(y: jax.Array, mask: jax.Array
            ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Teacher-forcing inputs: (y_{t-1} [b, t, c] with 0 at t = 0 and at
    masked steps, observed_{t-1} [b, t, 1], start [b, t, 1] = 1 at t = 0).

    The start flag gives the first step its own input weights: without it
    p(y_0) is learned only through weights that every later step pulls on,
    and the many confident later steps drown it."""
    y = jnp.where(mask[..., None], y, 0.0)
    prev = jnp.pad(y, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    seen = jnp.pad(mask.astype(jnp.float32), ((0, 0), (1, 0)))[:, :-1]
    start = jnp.zeros_like(seen).at[:, 0].set(1.0)
    return prev, seen[..., None], start[..., None]

  def inputs(self, prev, seen, start, label, covariates, time=None):
    cond = self.condition(label, covariates, prev.shape[0])
    parts = [prev, seen, start] + ([] if time is None else [time])
    return _with_condition(jnp.concatenate(parts, -1), cond)

  def __call__(self, y: jax.Array, mask: jax.Array,
               label: jax.Array | None = None,
               covariates: jax.Array | None = None,
               time: jax.Array | None = None) -> jax.Array:
    """Teacher-forced head parameters: y [b, t, c] (the head's input
    features of the values), mask [b, t], time [b, t, F] (features of each
    predicted step's time, `time_features`; None without) ->
    [b, t, num_params], where step t sees y_<t only."""
    prev, seen, start = self.shift(y, mask)
    h = self.stack(self.inputs(prev, seen, start, label, covariates, time))
    return self.out(h)

  def initial_carry(self, batch: int):
    return self.stack.initial_carry(batch)

  def step(self, carry, prev: jax.Array, seen: jax.Array, start: jax.Array,
           label: jax.Array | None = None,
           covariates: jax.Array | None = None,
           time: jax.Array | None = None):
    """One step: prev [b, c] values of step t-1, seen [b, 1], start [b, 1]
    (1 at a series' first step), time [b, F] features of step t's time ->
    (carry, head parameters [b, num_params] of step t)."""
    carry, h = self.stack.step(
        carry, self.inputs(prev, seen, start, label, covariates, time))
    return carry, self.out(h)


class SeriesGenerator(nn.Module):
  """RCGAN generator: noise z [b, t, noise_dim] (+ condition) -> [b, t, c].

  Attributes:
    channels: output channels.
    output: "linear" (z-scored data) or "sigmoid" (data scaled to [0, 1]).
  """

  channels: int
  cell: str = "gru"
  hidden: int = 64
  layers: int = 2
  num_classes: int = 0
  num_covariates: int = 0
  output: str = "linear"

  @nn.compact
  def __call__(self, z: jax.Array, label: jax.Array | None = None,
               covariates: jax.Array | None = None) -> jax.Array:
    cond = Condition(self.num_classes, self.num_covariates)(
        label, covariates, z.shape[0])
    h = RecurrentStack(self.cell, self.hidden, self.layers)(
        _with_condition(z, cond))
    x = nn.Dense(self.channels)(h)
    return nn.sigmoid(x) if self.output == "sigmoid" else x


class SeriesDiscriminator(nn.Module):
  """RCGAN discriminator: x [b, t, c] (+ condition) -> logits [b, t]."""

  cell: str = "gru"
  hidden: int = 64
  layers: int = 2
  num_classes: int = 0
  num_covariates: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, label: jax.Array | None = None,
               covariates: jax.Array | None = None) -> jax.Array:
    cond = Condition(self.num_classes, self.num_covariates)(
        label, covariates, x.shape[0])
    h = RecurrentStack(self.cell, self.hidden, self.layers)(
        _with_condition(x, cond))
    return nn.Dense(1)(h)[..., 0]


class NextStep(nn.Module):
  """x [b, t, c] -> a prediction of x_{t+1} at every step [b, t, c]."""

  channels: int
  cell: str = "gru"
  hidden: int = 64
  layers: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = RecurrentStack(self.cell, self.hidden, self.layers)(x)
    return nn.Dense(self.channels)(h)
