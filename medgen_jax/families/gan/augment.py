"""Differentiable augmentation of the discriminator's inputs (small data).

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"): the same random, differentiable transforms are
applied to real and generated images before D sees them, in D's update and
in G's, so D cannot memorise the few real images and G's gradient flows
through the transform. Every op draws its own randomness per example, inside
the jitted step; images are [b, *spatial, c] in [-1, 1], 2-D or 3-D.

Ops (`--augment translation,cutout,color`):
  * translation: shift by up to 1/8 of each side (integer pixels), zeros in;
  * cutout: zero one box of half of each side at a random position;
  * color: brightness + U(-0.5, 0.5), contrast x U(0.5, 1.5) around the
    example's mean (and saturation x U(0, 2) around the pixel's mean for
    RGB).

ADA (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): each op is applied to an example with probability p (one
draw per example and op), and p adapts to the overfitting heuristic
r_t = E[sign(D(real))]: after each discriminator update p moves by
sign(r_t - target) * batch / (ada_kimg * 1000), clipped to [0, 1]
(`--ada-target 0.6`; 0 = fixed p = 1, plain DiffAugment). The update lives
in the GAN step (families/gan/step.py); p starts at 0. The paper moves p by
1 over 500k images; `gan.ada_kimg` defaults to 100k, since our runs see far
fewer images.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

AUGMENT_OPS = ("translation", "cutout", "color")


def parse_ops(text: str) -> tuple[str, ...]:
  """"translation,cutout" -> ("translation", "cutout"); "" -> ()."""
  ops = tuple(o.strip() for o in str(text).split(",") if o.strip())
  bad = [o for o in ops if o not in AUGMENT_OPS]
  if bad:
    raise ValueError(f"unknown augmentation(s) {bad}; expected a comma-"
                     f"separated subset of {', '.join(AUGMENT_OPS)}")
  return ops


def translate(x: jax.Array, key: jax.Array, ratio: float = 0.125) -> jax.Array:
  """Shifts each example by its own integer offset per spatial axis
  (|offset| <= ratio * side, rounded); pixels shifted in are 0."""
  b, *spatial, _ = x.shape
  keys = jax.random.split(key, len(spatial))
  out = x
  for axis, (n, k) in enumerate(zip(spatial, keys), start=1):
    reach = int(n * ratio + 0.5)
    if reach == 0:
      continue
    shift = jax.random.randint(k, (b,), -reach, reach + 1)  # [b]
    src = jnp.arange(n)[None, :] - shift[:, None]           # [b, n]
    valid = (src >= 0) & (src < n)
    idx_shape = [b] + [1] * (x.ndim - 1)
    idx_shape[axis] = n
    idx = jnp.clip(src, 0, n - 1).reshape(idx_shape)
    gathered = jnp.take_along_axis(out, jnp.broadcast_to(idx, out.shape),
                                   axis=axis)
    out = jnp.where(valid.reshape(idx_shape), gathered, 0.0)
  return out


def cutout(x: jax.Array, key: jax.Array, ratio: float = 0.5) -> jax.Array:
  """Zeros one box of ratio * side per axis, centred at a random pixel."""
  b, *spatial, _ = x.shape
  keys = jax.random.split(key, len(spatial))
  inside = jnp.ones((b,) + tuple(spatial), bool)
  for axis, (n, k) in enumerate(zip(spatial, keys)):
    size = int(n * ratio + 0.5)
    centre = jax.random.randint(k, (b,), 0, n + (1 - size % 2))  # [b]
    lo = centre - size // 2
    pos = jnp.arange(n)
    hit = (pos[None, :] >= lo[:, None]) & (pos[None, :] < lo[:, None] + size)
    shape = [b] + [1] * len(spatial)
    shape[axis + 1] = n
    inside = inside & hit.reshape(shape)
  keep = ~inside
  return x * keep[..., None].astype(x.dtype)


def color(x: jax.Array, key: jax.Array) -> jax.Array:
  """Brightness, contrast (and saturation for RGB), per example."""
  k_b, k_c, k_s = jax.random.split(key, 3)
  shape = (x.shape[0],) + (1,) * (x.ndim - 1)
  x = x + (jax.random.uniform(k_b, shape) - 0.5)
  axes = tuple(range(1, x.ndim))
  mean = jnp.mean(x, axis=axes, keepdims=True)
  x = (x - mean) * (jax.random.uniform(k_c, shape) + 0.5) + mean
  if x.shape[-1] == 3:
    pixel_mean = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - pixel_mean) * (jax.random.uniform(k_s, shape) * 2.0) + pixel_mean
  return x


_OPS = {"translation": translate, "cutout": cutout, "color": color}


def augment(x: jax.Array, key: jax.Array, ops: Sequence[str],
            p: jax.Array | float = 1.0) -> jax.Array:
  """Applies `ops` in order, each to an example with probability p.

  Args:
    x: images [b, *spatial, c].
    key: PRNG key (fold in the step and the update's index).
    ops: names from AUGMENT_OPS.
    p: probability per example and op (ADA's p; 1.0 = always).

  Returns:
    Augmented images, the shape of x; differentiable in x.
  """
  if not ops:
    return x
  keys = jax.random.split(key, 2 * len(ops))
  shape = (x.shape[0],) + (1,) * (x.ndim - 1)
  for i, name in enumerate(ops):
    y = _OPS[name](x, keys[2 * i])
    apply = jax.random.uniform(keys[2 * i + 1], shape) < p
    x = jnp.where(apply, y, x)
  return x

