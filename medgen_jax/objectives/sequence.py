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
"Generating Sequences With Recurrent Neural Networks"), the categorical one
(a class per step and channel: sleep stages) and the count ones, "nb" and
"zinb" (activity counts), whose log-densities are the VAE's
(objectives/likelihoods.py). The loss, the models and scan sampling take
every head unchanged.

A head also says what its values are (`data`: real | categorical | counts)
and how a value is fed back to the model as the next step's input
(`encode`): itself for real values, one-hot for classes, log1p(count)
centred for counts. Heads whose form depends on the data (the number of
classes, the scale of the counts) are built by `get_head(name, categories,
log_mean)` from the registered template's `make`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from medgen_jax.objectives.likelihoods import (nb_log_prob, nb_sample,
                                               zinb_log_prob, zinb_sample)
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
    mean: raw [..., P] -> the expected value [..., C] (for classes, the
      most probable class: a valid value wherever a placeholder is needed).
    data: what the values are: "real", "categorical" (class indices
      0..K-1 stored as floats) or "counts" (non-negative integers).
    encode: y [..., C] -> the model's input features of a value [..., E]
      (None: the value itself).
    make: (categories, log_mean) -> the head for given data (None: the
      head does not depend on the data).
  """

  name: str
  num_params: Callable[[int], int]
  nll: Callable[[Array, Array], Array]
  sample: Callable[[Array, Array, float], Array]
  mean: Callable[[Array], Array]
  data: str = "real"
  encode: Callable[[Array], Array] | None = None
  make: Callable[[int, float], "Head"] | None = None

  def inputs(self, y: Array) -> Array:
    """The model's input features of values y [..., C]."""
    return y if self.encode is None else self.encode(y)

  def input_size(self, channels: int) -> int:
    return int(self.inputs(jnp.zeros((1, channels), jnp.float32)).shape[-1])


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


# -- Categorical: raw = [logits (K) per channel], y = class index -----------


def make_categorical(categories: int) -> Head:
  """One of `categories` classes per step and channel (e.g. sleep stages).

  nll is the cross-entropy -log softmax(logits)[y]; temperature T samples
  from softmax(logits / T), T = 0 takes the most probable class.
  """
  k = int(categories)

  def split(raw: Array) -> Array:
    return raw.reshape(raw.shape[:-1] + (raw.shape[-1] // k, k))  # [..., C, K]

  def nll(raw: Array, y: Array) -> Array:
    logp = jax.nn.log_softmax(split(raw), axis=-1)
    idx = jnp.clip(y, 0, k - 1).astype(jnp.int32)[..., None]
    return -jnp.take_along_axis(logp, idx, axis=-1)[..., 0].sum(-1)

  def sample(key: Array, raw: Array, temperature: float) -> Array:
    logits = split(raw)
    t = jnp.asarray(temperature, jnp.float32)
    drawn = jax.random.categorical(key, logits / jnp.maximum(t, 1e-6))
    return jnp.where(t > 0, drawn, jnp.argmax(logits, -1)).astype(jnp.float32)

  def mode(raw: Array) -> Array:
    return jnp.argmax(split(raw), -1).astype(jnp.float32)

  def encode(y: Array) -> Array:   # one-hot per channel, flattened
    hot = jax.nn.one_hot(jnp.clip(y, 0, k - 1).astype(jnp.int32), k)
    return hot.reshape(y.shape[:-1] + (y.shape[-1] * k,))

  return Head("categorical", lambda c: k * c, nll, sample, mode,
              data="categorical", encode=encode,
              make=lambda cats, _: make_categorical(cats))


HEADS.register("categorical", make_categorical(2))


# -- Counts: NB and ZINB with a log link --------------------------------------
#
# raw = [log-mean offsets (C), raw inverse dispersions (C)(, zero logits (C))]
# mu = exp(log_mean + clip(raw_mu)), theta = softplus(raw_theta) + MIN_THETA.
# log_mean (the train split's log mean count, a constant of the head) puts a
# fresh network's mean at the data's scale, so the first steps do not spend
# thousands of updates moving a bias from log 1 to log 200.

MIN_THETA = 1e-3
_LOG_MU_RANGE = 12.0   # mu within exp(+-12) of the train mean


def _count_encode(log_mean: float):
  def encode(y: Array) -> Array:
    return jnp.log1p(jnp.maximum(y, 0.0)) - log_mean
  return encode


def make_counts(zero_inflated: bool, log_mean: float = 0.0) -> Head:
  """NB (mean mu, inverse dispersion theta; Var = mu + mu^2 / theta) or, with
  `zero_inflated`, ZINB: an extra zero with probability pi (both as in
  objectives/likelihoods.py). Temperature T > 0 samples; T = 0 gives the
  mean mu (1 - pi), not an integer."""
  per = 3 if zero_inflated else 2
  name = "zinb" if zero_inflated else "nb"

  def split(raw: Array):
    c = raw.shape[-1] // per
    mu = jnp.exp(log_mean + jnp.clip(raw[..., :c], -_LOG_MU_RANGE,
                                     _LOG_MU_RANGE))
    theta = jax.nn.softplus(raw[..., c:2 * c]) + MIN_THETA
    pi = raw[..., 2 * c:] if zero_inflated else None
    return mu, theta, pi

  def nll(raw: Array, y: Array) -> Array:
    mu, theta, pi = split(raw)
    y = jnp.maximum(jnp.round(y), 0.0)
    logp = (zinb_log_prob(y, mu, theta, pi) if zero_inflated
            else nb_log_prob(y, mu, theta))
    return -logp.sum(-1)

  def mean(raw: Array) -> Array:
    mu, _, pi = split(raw)
    return mu * jax.nn.sigmoid(-pi) if zero_inflated else mu

  def sample(key: Array, raw: Array, temperature: float) -> Array:
    mu, theta, pi = split(raw)
    drawn = (zinb_sample(key, mu, theta, pi) if zero_inflated
             else nb_sample(key, mu, theta))
    return jnp.where(jnp.asarray(temperature) > 0, drawn, mean(raw))

  return Head(name, lambda c: per * c, nll, sample, mean, data="counts",
              encode=_count_encode(log_mean),
              make=lambda _, lm: make_counts(zero_inflated, lm))


HEADS.register("nb", make_counts(False))
HEADS.register("zinb", make_counts(True))


def get_head(name: str, categories: int = 0, log_mean: float = 0.0) -> Head:
  """The head `name` for data with `categories` classes (categorical heads)
  or log mean count `log_mean` (count heads)."""
  head = HEADS.get(name)
  return head.make(categories, log_mean) if head.make else head


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
