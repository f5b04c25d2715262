"""Per-timestep sequence losses with pluggable output heads.

The loss of one example is the masked sum over its steps

    L_i = sum_t m_it * nll(y_it | theta_it),     theta_it = f(y_i,<t)

returned per example ([batch]); the step reduces over the batch in one place
(objectives/reduce.py). A masked step (padding, a gap, a NaN in the record)
contributes exactly nothing: its target is replaced by a safe value before
the head sees it and its term is selected away with `jnp.where`, so neither
the loss nor its gradient depends on what a padded step holds.

A head turns a model's raw outputs at one step (`num_params(channels)`
numbers) into a distribution over that step's values. `HEADS` holds the
real-valued ones, "gaussian" (diagonal Normal) and "mdn" (a mixture of
diagonal Normals; Bishop 1994, "Mixture Density Networks"; Graves 2013,
"Generating Sequences With Recurrent Neural Networks"). Categorical and
count heads register beside them (`HEADS.register`) and the loss, the
models and scan sampling take them unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from medgen_jax.registry import Registry

Array = jax.Array

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
MIN_SCALE = 1e-3   # floor of every predicted standard deviation


@dataclasses.dataclass(frozen=True)
class Head:
  """An output distribution per time step.

  Attributes:
    name: registry name.
    num_params: channels -> raw outputs per step.
    nll: (raw [..., P], y [..., C]) -> negative log-density [...] (nats,
      summed over channels).
    sample: (key, raw [..., P], temperature) -> y [..., C]. Temperature
      scales the spread (0 gives the most likely value: the mean, or the
      mean of the most probable component).
    mean: raw [..., P] -> the expected value [..., C].
  """

  name: str
  num_params: Callable[[int], int]
  nll: Callable[[Array, Array], Array]
  sample: Callable[[Array, Array, float], Array]
  mean: Callable[[Array], Array]


HEADS: Registry[Head] = Registry("sequence output head", hint="--head")


def _scale(raw: Array) -> Array:
  return jax.nn.softplus(raw) + MIN_SCALE


def _normal_nll(y: Array, mean: Array, scale: Array) -> Array:
  """Elementwise -log N(y; mean, scale^2)."""
  return _HALF_LOG_2PI + jnp.log(scale) + 0.5 * jnp.square((y - mean) / scale)


# -- Gaussian: raw = [mean (C), softplus^-1 scale (C)] -------------------------


def _gauss_split(raw: Array) -> tuple[Array, Array]:
  c = raw.shape[-1] // 2
  return raw[..., :c], _scale(raw[..., c:])


def _gauss_nll(raw: Array, y: Array) -> Array:
  mean, scale = _gauss_split(raw)
  return _normal_nll(y, mean, scale).sum(-1)


def _gauss_sample(key: Array, raw: Array, temperature: float) -> Array:
  mean, scale = _gauss_split(raw)
  return mean + temperature * scale * jax.random.normal(key, mean.shape)


HEADS.register("gaussian", Head(
    "gaussian", lambda c: 2 * c, _gauss_nll, _gauss_sample,
    lambda raw: _gauss_split(raw)[0]))


# -- Mixture density: raw = [logits (K), means (K*C), raw scales (K*C)] --------


def make_mdn(components: int) -> Head:
  """A mixture of `components` diagonal Normals per step."""
  k = components

  def split(raw: Array):
    c = (raw.shape[-1] - k) // (2 * k)
    logits = raw[..., :k]
    means = raw[..., k:k + k * c].reshape(raw.shape[:-1] + (k, c))
    scales = _scale(raw[..., k + k * c:]).reshape(raw.shape[:-1] + (k, c))
    return logits, means, scales

  def nll(raw: Array, y: Array) -> Array:
    logits, means, scales = split(raw)
    comp = -_normal_nll(y[..., None, :], means, scales).sum(-1)  # [..., K]
    return -jax.nn.logsumexp(jax.nn.log_softmax(logits) + comp, axis=-1)

  def sample(key: Array, raw: Array, temperature: float) -> Array:
    logits, means, scales = split(raw)
    k_comp, k_eps = jax.random.split(key)
    t = jnp.asarray(temperature, jnp.float32)
    drawn = jax.random.categorical(k_comp, logits / jnp.maximum(t, 1e-6))
    which = jnp.where(t > 0, drawn, jnp.argmax(logits, -1))
    pick = jax.nn.one_hot(which, k)[..., None]                 # [..., K, 1]
    mean = (pick * means).sum(-2)
    scale = (pick * scales).sum(-2)
    return mean + t * scale * jax.random.normal(k_eps, mean.shape)

  def mean(raw: Array) -> Array:
    logits, means, _ = split(raw)
    return (jax.nn.softmax(logits)[..., None] * means).sum(-2)

  return Head(f"mdn{k}", lambda c: k + 2 * k * c, nll, sample, mean)


MDN_COMPONENTS = 5
HEADS.register("mdn", make_mdn(MDN_COMPONENTS))


# -- the masked per-example loss ------------------------------------------------


def masked_step_nll(head: Head, raw: Array, y: Array, mask: Array) -> Array:
  """Per-step NLL with masked steps exactly 0: raw [b, t, P], y [b, t, C],
  mask [b, t] bool -> [b, t]."""
  safe_y = jnp.where(mask[..., None], y, head.mean(jax.lax.stop_gradient(raw)))
  return jnp.where(mask, head.nll(raw, safe_y), 0.0)


def sequence_nll(head: Head, raw: Array, y: Array, mask: Array) -> Array:
  """sum_t m_t * nll(y_t | raw_t) per example: [b] (nats)."""
  return masked_step_nll(head, raw, y, mask).sum(-1)


def masked_mean_over_time(values: Array, mask: Array) -> Array:
  """Mean of values [b, t] over each example's unmasked steps: [b] (0 for
  an example with no unmasked step)."""
  m = mask.astype(values.dtype)
  return jnp.where(mask, values, 0.0).sum(-1) / jnp.maximum(m.sum(-1), 1.0)


def next_step_squared_error(pred: Array, x: Array, mask: Array) -> Array:
  """TimeGAN's supervised loss per example: the mean over valid pairs
  (t, t+1) of ||pred_t - x_{t+1}||^2 / C; pred, x [b, t, C], mask [b, t]."""
  pair = mask[:, :-1] & mask[:, 1:]
  err = jnp.square(pred[:, :-1] - jnp.where(mask[:, 1:, None], x[:, 1:], 0.0))
  return masked_mean_over_time(err.mean(-1), pair)
