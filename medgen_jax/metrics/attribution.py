"""Which inputs a model's output depends on: gradient attributions.

The function explained is any `f(x) -> [b]`, one scalar per example, given
as a Python callable of a batch with its parameters closed over: a
classifier's logit for one class, a GAN discriminator's logit, a survival
model's log-risk. Inputs may be images [b, h, w, c], volumes
[b, x, y, z, c], series [b, T, C] or vectors [b, d]; attributions have the
shape of the input.

  * `saliency`: the input gradient d f(x)_i / d x_i (Simonyan et al. 2014,
    "Deep inside convolutional networks");
  * `integrated_gradients`: the gradient averaged along the straight path
    from a baseline to the input, times (input - baseline) (Sundararajan et
    al. 2017, "Axiomatic attribution for deep networks"), with the
    completeness gap sum(attr) - (f(x) - f(baseline)) per example;
  * `smoothgrad`: the gradient averaged over Gaussian noise added to the
    input (Smilkov et al. 2017, "SmoothGrad: removing noise by adding
    noise"), or the mean squared gradient (SmoothGrad-Squared, Hooker et
    al. 2019);
  * `overlay`, `series_map`, `series_overlay`: pictures of attributions in
    the format of `outputs.save_image_grid` (float in [-1, 1]);
  * `WithExtras`: f(x) from a score(x, extras) whose other per-example
    inputs (masks, labels, covariates, arms) stay fixed.

Gradients are taken of sum_i f(x)_i with respect to the batch, which gives
every example its own gradient only because f treats examples independently
(no batch statistics: evaluate BatchNorm with running averages). Path points
and noise samples are folded into the batch, so f sees up to
(points x b) inputs in one call; `batch_size` bounds that.

Each function is compiled once per (f, input shape, settings): f is a static
argument of `jax.jit`, compared by identity, so pass the same callable on
every call (not a new lambda) to reuse the compiled program. Arrays that f
closes over (its parameters) become constants of that program.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.errors import ConfigError, DataError
from medgen_jax.outputs import volume_panels

ScalarFn = Callable[[jax.Array], jax.Array]

METHODS = ("riemann_trapezoid", "riemann_left", "riemann_right",
           "riemann_middle", "gauss_legendre")

# Picture colours in [0, 1]: positive attributions red, negative blue.
POSITIVE = np.array([0.84, 0.15, 0.16], np.float32)
NEGATIVE = np.array([0.12, 0.47, 0.71], np.float32)


class WithExtras:
  """score(x, extras) with per-example extras fixed, as the f(x) -> [b] the
  attribution functions take.

  The functions fold path points or noise samples into the batch, so f sees
  (points x b) inputs: the extras ({name: array [b, ...]}: masks, labels,
  covariates, a treatment arm) are tiled to match, example i of every
  point getting extras[i]. Build one object per explained batch and pass
  that same object to every call (one compile).
  """

  def __init__(self, score: Callable, extras: dict):
    self.score = score
    self.extras = {k: np.asarray(v) for k, v in extras.items()
                   if v is not None}
    sizes = {len(v) for v in self.extras.values()}
    if len(sizes) > 1:
      raise DataError(f"WithExtras: extras of different batch sizes {sizes}")
    self.size = sizes.pop() if sizes else None

  def __call__(self, x: jax.Array) -> jax.Array:
    reps = x.shape[0] // (self.size or x.shape[0])
    return self.score(x, {k: np.tile(v, (reps,) + (1,) * (v.ndim - 1))
                          for k, v in self.extras.items()})


# --------------------------------------------------------------------------
# Gradients.


def _as_float(x) -> jax.Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _checked(f: ScalarFn, x: jax.Array) -> jax.Array:
  """f(x) [b], or a DataError naming the shape f returned (at trace time)."""
  y = f(x)
  if jnp.shape(y) != x.shape[:1]:
    raise DataError(f"attribution: f must return one scalar per example, "
                    f"shape [{x.shape[0]}], for inputs {tuple(x.shape)}; it "
                    f"returned {tuple(jnp.shape(y))} (index the class or "
                    "squeeze the last axis)")
  return y


def _input_grad(f: ScalarFn, x: jax.Array) -> jax.Array:
  """d f(x)_i / d x_i for every example i: like x."""
  return jax.grad(lambda v: jnp.sum(_checked(f, v)))(x)


def _points_per_call(batch_size: int | None, batch: int, points: int) -> int:
  """How many path points or noise samples go through f in one call."""
  if batch_size is None:
    return points
  if batch_size < 1:
    raise ConfigError(f"attribution: batch_size must be a positive number of "
                      f"inputs per call of f, got {batch_size}")
  return int(min(points, max(1, batch_size // max(batch, 1))))


def _weighted_grad_sum(f: ScalarFn, x: jax.Array, point_args, weights,
                       make_input: Callable, chunk: int,
                       squared: bool) -> jax.Array:
  """sum_k weights[k] g_k (or g_k^2), g_k the input gradient at point k.

  Args:
    point_args: what tells the points apart (alphas [K], keys [K, 2]...).
    weights: float [K].
    make_input: (one entry of point_args) -> one path point like x.
    chunk: points evaluated in one call of f (K is padded to a multiple of
      it with weight-0 copies of the last point).

  Returns:
    float like x.
  """
  k = weights.shape[0]
  pad = -k % chunk
  if pad:
    point_args = jax.tree.map(
        lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, 0)]), point_args)
    weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
  n_chunks = (k + pad) // chunk
  point_args = jax.tree.map(
      lambda a: a.reshape((n_chunks, chunk) + a.shape[1:]), point_args)
  weights = weights.reshape(n_chunks, chunk)

  def body(total, step):
    args, w = step
    inputs = jax.vmap(make_input)(args)                  # [chunk, b, ...]
    grads = _input_grad(f, inputs.reshape((-1,) + x.shape[1:]))
    grads = grads.reshape(inputs.shape)                  # [chunk, b, ...]
    if squared:
      grads = grads * grads
    return total + jnp.tensordot(w.astype(grads.dtype), grads, axes=1), None

  total, _ = jax.lax.scan(body, jnp.zeros_like(x), (point_args, weights))
  return total


@functools.partial(jax.jit, static_argnames=("f",))
def _saliency(f: ScalarFn, x: jax.Array) -> jax.Array:
  return _input_grad(f, x)


def saliency(f: ScalarFn, x) -> jax.Array:
  """The input gradient of each example's scalar (Simonyan et al. 2014).

  Args:
    f: batch [b, ...] -> [b], one scalar per example.
    x: inputs [b, ...].

  Returns:
    d f(x)_i / d x_i, float like x.
  """
  return _saliency(f, _as_float(x))


def path_points(steps: int, method: str = "riemann_trapezoid"
                ) -> tuple[np.ndarray, np.ndarray]:
  """Points alpha in [0, 1] and weights for integral_0^1 g(alpha) d alpha.

  Args:
    steps: number of points (gradient evaluations); the trapezoid rule uses
      both ends, so `steps` points make steps - 1 intervals.
    method: "riemann_trapezoid" (error O(1 / steps^2) for smooth f),
      "riemann_left", "riemann_right", "riemann_middle", or
      "gauss_legendre" (exact for polynomial paths up to degree
      2 steps - 1, but no end points).

  Returns:
    (alphas float64 [steps], weights float64 [steps] summing to 1).
  """
  if method not in METHODS:
    raise ConfigError(f"integrated_gradients: unknown method {method!r}; "
                      f"choose one of {', '.join(METHODS)}")
  minimum = 2 if method == "riemann_trapezoid" else 1
  if int(steps) != steps or steps < minimum:
    raise ConfigError(f"integrated_gradients: {method} needs steps >= "
                      f"{minimum}, got {steps}")
  steps = int(steps)
  if method == "gauss_legendre":
    nodes, weights = np.polynomial.legendre.leggauss(steps)   # on [-1, 1]
    return (nodes + 1.0) / 2.0, weights / 2.0
  if method == "riemann_trapezoid":
    alphas = np.linspace(0.0, 1.0, steps)
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2.0
    return alphas, weights
  offset = {"riemann_left": 0.0, "riemann_right": 1.0,
            "riemann_middle": 0.5}[method]
  return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


@functools.partial(jax.jit, static_argnames=("f", "chunk"))
def _integrated_gradients(f: ScalarFn, x: jax.Array, baseline: jax.Array,
                          alphas: jax.Array, weights: jax.Array, chunk: int
                          ) -> tuple[jax.Array, jax.Array]:
  diff = x - baseline                                      # [b, ...]
  mean_grad = _weighted_grad_sum(
      f, x, alphas, weights, lambda a: baseline + a.astype(x.dtype) * diff,
      chunk, squared=False)
  attributions = mean_grad * diff
  gain = _checked(f, x) - _checked(f, baseline)            # [b]
  total = jnp.sum(attributions.reshape(x.shape[0], -1), axis=1)
  return attributions, total - gain.astype(total.dtype)


def integrated_gradients(f: ScalarFn, x, baseline=None, steps: int = 64,
                         method: str = "riemann_trapezoid",
                         batch_size: int | None = None
                         ) -> tuple[jax.Array, jax.Array]:
  """Integrated gradients (Sundararajan et al. 2017).

  attr = (x - x') * integral_0^1 grad f(x' + a (x - x')) da, the integral
  taken by a quadrature rule of `steps` points. By the fundamental theorem
  of calculus sum(attr) = f(x) - f(x') per example, up to the quadrature
  error, which `delta` reports (more steps when it is large against the
  gain; kinks of ReLU networks converge slower than smooth ones).

  Args:
    f: batch [b, ...] -> [b], one scalar per example.
    x: inputs [b, ...] (images, volumes, series or vectors).
    baseline: the reference input x', like x or broadcastable to it (say
      [1, ...] for one baseline for all); None is zeros (black images,
      flat series).
    steps: quadrature points along the path.
    method: see `path_points`; "riemann_trapezoid" or "gauss_legendre"...
    batch_size: the most inputs f sees in one call (path points x b);
      None evaluates all points at once. It changes memory, not results
      (up to float rounding).

  Returns:
    (attributions float like x, delta float [b] = sum(attr) - (f(x) -
    f(x'))).
  """
  x = _as_float(x)
  if x.ndim < 2:
    raise DataError(f"integrated_gradients: x must be a batch [b, ...], got "
                    f"shape {tuple(x.shape)}")
  if baseline is None:
    baseline = jnp.zeros_like(x)
  else:
    baseline = jnp.asarray(baseline, x.dtype)
    try:
      baseline = jnp.broadcast_to(baseline, x.shape)
    except ValueError:
      raise DataError(f"integrated_gradients: baseline shape "
                      f"{tuple(baseline.shape)} does not broadcast to x's "
                      f"{tuple(x.shape)}") from None
  alphas, weights = path_points(steps, method)
  chunk = _points_per_call(batch_size, x.shape[0], len(alphas))
  return _integrated_gradients(f, x, baseline, jnp.asarray(alphas, x.dtype),
                               jnp.asarray(weights, x.dtype), chunk)


@functools.partial(jax.jit,
                   static_argnames=("f", "num_samples", "chunk", "squared"))
def _smoothgrad(f: ScalarFn, x: jax.Array, key: jax.Array,
                noise_level: jax.Array, num_samples: int, chunk: int,
                squared: bool) -> jax.Array:
  flat = x.reshape(x.shape[0], -1)
  spread = jnp.max(flat, axis=1) - jnp.min(flat, axis=1)          # [b]
  sigma = (noise_level * spread).reshape((-1,) + (1,) * (x.ndim - 1))

  def noisy(key):
    return x + sigma * jax.random.normal(key, x.shape, x.dtype)

  keys = jax.random.split(key, num_samples)
  weights = jnp.full((num_samples,), 1.0 / num_samples, x.dtype)
  return _weighted_grad_sum(f, x, keys, weights, noisy, chunk, squared)


def smoothgrad(f: ScalarFn, x, key: jax.Array, num_samples: int = 32,
               noise_level: float = 0.15, squared: bool = False,
               batch_size: int | None = None) -> jax.Array:
  """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noise.

  mean_k grad f(x + e_k), e_k ~ N(0, sigma^2) per element, with
  sigma = noise_level * (max(x_i) - min(x_i)) for each example i (the
  paper's 10-20% of the input's range). `squared=True` averages
  grad^2 instead (SmoothGrad-Squared, Hooker et al. 2019), which has no
  sign.

  Args:
    f: batch [b, ...] -> [b], one scalar per example.
    x: inputs [b, ...].
    key: a jax.random key; sample k uses split(key, num_samples)[k], so
      results do not depend on batch_size.
    num_samples: noisy copies per example.
    noise_level: noise standard deviation as a fraction of each example's
      value range.
    squared: average squared gradients.
    batch_size: the most inputs f sees in one call (samples x b); None
      evaluates all samples at once.

  Returns:
    float like x.
  """
  x = _as_float(x)
  if x.ndim < 2:
    raise DataError(f"smoothgrad: x must be a batch [b, ...], got shape "
                    f"{tuple(x.shape)}")
  if int(num_samples) != num_samples or num_samples < 1:
    raise ConfigError(f"smoothgrad: num_samples must be a positive integer, "
                      f"got {num_samples}")
  if not noise_level >= 0:
    raise ConfigError(f"smoothgrad: noise_level must be >= 0, got "
                      f"{noise_level}")
  chunk = _points_per_call(batch_size, x.shape[0], int(num_samples))
  return _smoothgrad(f, x, key, jnp.asarray(noise_level, x.dtype),
                     int(num_samples), chunk, bool(squared))


# --------------------------------------------------------------------------
# Pictures.


def _signed_scale(maps: np.ndarray, percentile: float) -> np.ndarray:
  """maps [n, ...] divided by each one's percentile of |value|, clipped to
  [-1, 1] (an all-zero map stays zero)."""
  maps = np.asarray(maps, np.float64)
  flat = np.abs(maps.reshape(len(maps), -1))
  scale = np.percentile(flat, percentile, axis=1) if flat.size else 0.0
  scale = np.where(scale > 0, scale, flat.max(1, initial=0.0))
  scale = np.where(scale > 0, scale, 1.0)
  scale = scale.reshape((-1,) + (1,) * (maps.ndim - 1))
  return np.clip(maps / scale, -1.0, 1.0).astype(np.float32)


def overlay(images, attributions, percentile: float = 99.0,
            strength: float = 0.85) -> np.ndarray:
  """Attribution maps on top of their images, for `save_image_grid`.

  The image is shown in grey; each pixel's attribution, summed over
  channels and divided by the image's `percentile` of |attribution|
  (clipped to [-1, 1]), tints it red (positive) or blue (negative) in
  proportion to its size. Volumes [n, x, y, z, c] are shown as their three
  middle slices (scaled over those slices).

  Args:
    images: float [n, h, w, c] (or [n, x, y, z, c]) in [-1, 1], c = 1 or 3.
    attributions: float [n, h, w, c'] (or [n, x, y, z, c']).
    percentile: the |attribution| that gets full colour, per image.
    strength: opacity of full colour, in [0, 1].

  Returns:
    float32 [n, h, w, 3] in [-1, 1].
  """
  images = np.asarray(images, np.float32)
  attributions = np.asarray(attributions, np.float32)
  if images.ndim not in (4, 5) or attributions.shape[:-1] != images.shape[:-1]:
    raise DataError(f"overlay: images {images.shape} and attributions "
                    f"{attributions.shape} must be [n, h, w, c] (or "
                    "[n, x, y, z, c]) with the same [n, h, w]")
  if images.ndim == 5:
    images = volume_panels(images, fill=-1.0)
    attributions = volume_panels(attributions, fill=0.0)
  grey = (np.clip(images.mean(-1, keepdims=True), -1, 1) + 1) / 2  # [n,h,w,1]
  amount = _signed_scale(attributions.sum(-1), percentile)[..., None]
  color = np.where(amount > 0, POSITIVE, NEGATIVE)               # [n,h,w,3]
  tint = strength * np.abs(amount)
  pixels = (1 - tint) * grey + tint * color                      # in [0, 1]
  return (2 * pixels - 1).astype(np.float32)


def series_map(attributions, percentile: float = 99.0) -> np.ndarray:
  """Attributions of series [n, T, C] -> maps [n, C, T] in [-1, 1].

  Each example is divided by its `percentile` of |attribution| (so the
  largest few steps saturate at +-1) and clipped; the sign is kept.
  """
  attributions = np.asarray(attributions, np.float32)
  if attributions.ndim == 2:
    attributions = attributions[..., None]
  if attributions.ndim != 3:
    raise DataError(f"series_map: attributions must be [n, T, C] or [n, T], "
                    f"got {attributions.shape}")
  return _signed_scale(attributions.transpose(0, 2, 1), percentile)


def _heat_strip(row: np.ndarray, width: int, height: int) -> np.ndarray:
  """One channel's map [T] in [-1, 1] -> uint8 strip [height, width, 3]:
  white for 0, red for +1, blue for -1 (steps spread as in `trace_panel`).
  """
  t = len(row)
  step = np.round(np.arange(width) * (t - 1) / max(width - 1, 1)).astype(int)
  amount = row[step][:, None]                                    # [w, 1]
  color = np.where(amount > 0, POSITIVE, NEGATIVE)
  pixels = (1 - np.abs(amount)) + np.abs(amount) * color         # [w, 3]
  return np.broadcast_to(np.round(pixels * 255).astype(np.uint8),
                         (height, width, 3))


def series_overlay(series, attributions, height_per_channel: int = 32,
                   strip_height: int = 6, width: int | None = None,
                   titles: Sequence[str] | None = None,
                   percentile: float = 99.0) -> np.ndarray:
  """Series with their attributions as heat strips, one example per row.

  Each example is drawn as `traces.trace_panel` draws it (one band per
  channel, its own scale); under it, one strip per channel colours every
  time step by `series_map` (red positive, blue negative, white none).

  Args:
    series: float [n, T, C] (or [n, T]).
    attributions: like series.
    height_per_channel: trace band height in pixels.
    strip_height: heat strip height per channel in pixels.
    width: picture width; default T clipped to [256, 1024].
    titles: one short label per example (drawn above its traces), or None.
    percentile: see `series_map`.

  Returns:
    float32 [1, H, W, 3] in [-1, 1], white background.
  """
  from medgen_jax import traces  # noqa: PLC0415
  series = np.asarray(series, np.float32)
  if series.ndim == 2:
    series = series[..., None]
  attributions = np.asarray(attributions, np.float32).reshape(series.shape)
  maps = series_map(attributions, percentile)                   # [n, C, T]
  n, t, c = series.shape
  if titles is not None and len(titles) != n:
    raise DataError(f"series_overlay: {len(titles)} titles for {n} examples")
  width = width or int(np.clip(t, 256, 1024))
  rows = []
  for i in range(n):
    panel = traces.trace_panel(
        [series[i:i + 1]], None,
        None if titles is None else [titles[i]],
        height_per_channel=height_per_channel, width=width)[0]
    panel = np.round((panel + 1) * 127.5).astype(np.uint8)      # [h, W, 3]
    strips = [_heat_strip(maps[i, ch], width, strip_height)
              for ch in range(c)]
    rule = np.full((2, width, 3), 90, np.uint8)                 # between rows
    rows.extend(([rule] if i else []) + [panel] + strips)
  picture = np.concatenate(rows).astype(np.float32)[None]       # [1,H,W,3]
  return picture / 127.5 - 1.0
