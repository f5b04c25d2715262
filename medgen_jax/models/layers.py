"""Building blocks shared by the image models, for 2-D images or 3-D volumes.

`Upsample2x` doubles every spatial size of a feature map, 2-D [b, h, w, c]
or 3-D [b, x, y, z, c], in one of two ways:
  * "transpose": a stride-2 transposed convolution (the classic DCGAN layer).
  * "subpixel": a stride-1 convolution to 2**ndim x the channels followed by
    depth-to-space (Shi et al. 2016, "Real-Time Single Image and Video
    Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural
    Network"), initialised ICNR-style (Aitken et al. 2017) so that at init it
    equals nearest-neighbour upsampling of a convolution and has no
    checkerboard pattern.
Both map [b, h, w, c] -> [b, 2h, 2w, features] (and [b, x, y, z, c] ->
[b, 2x, 2y, 2z, features]). The sub-pixel form is the default because
XLA:CPU computes the weight gradient of a stride-2 transposed convolution very
slowly (jax-ml/jax#31662, openxla/xla#34273). Note that the two are different
layers, not two forms of one: in 2-D the 3x3 convolution to 4*features
channels has 2.25x the weights of the 4x4 transposed convolution (each of its
output phases sees a 3x3 input window where the transposed convolution's sees
2x2); in 3-D the ratio is 3.375x. benchmarks/gan_step_bench.py times whole
GAN steps with each; it compares two models, not two implementations of one.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

UPSAMPLE_KINDS = ("subpixel", "transpose")


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """[b, *spatial, r**n * c] -> [b, *(d * r for d in spatial), c].

  n = x.ndim - 2 spatial dims. In 2-D ([b, h, w, r*r*c] -> [b, h*r, w*r, c])
  channel index (i * r + j) * c + k of input pixel (y, x) goes to output
  pixel (y * r + i, x * r + j), channel k. In 3-D ([b, X, Y, Z, r**3 * c] ->
  [b, X*r, Y*r, Z*r, c]) channel index ((i * r + j) * r + k) * c + ch of
  input voxel (p, q, s) goes to output voxel (p * r + i, q * r + j,
  s * r + k), channel ch. In general the block offset (i_1, ..., i_n) is the
  row-major index of the channel group, the last spatial dim varying fastest,
  and the output channel varies fastest of all.

  Raises:
    ValueError: x has no spatial dims, or its channels are not a multiple of
      r**n.
  """
  n = x.ndim - 2
  if n < 1:
    raise ValueError(f"depth_to_space needs [b, *spatial, c], got {x.shape}")
  b, *spatial, rc = x.shape
  group = r ** n
  c = rc // group
  if c * group != rc:
    raise ValueError(f"channels {rc} not divisible by r**{n}={group}")
  x = x.reshape(b, *spatial, *(r,) * n, c)  # [b, d_1..d_n, r_1..r_n, c]
  # Interleave each spatial axis with its block offset: d_1, r_1, d_2, r_2...
  perm = [0]
  for a in range(n):
    perm += [1 + a, 1 + n + a]
  perm.append(1 + 2 * n)
  x = x.transpose(perm)
  return x.reshape(b, *(d * r for d in spatial), c)


def icnr_init(base_init=nn.initializers.lecun_normal(), r: int = 2):
  """Kernel init whose r**ndim sub-pixel groups start identical (ICNR).

  ndim is the number of spatial dims of the kernel, len(shape) - 2 for a
  [*spatial, cin, cout] kernel.
  """

  def init(key, shape, dtype=jnp.float32):
    *spatial, cin, cout = shape
    group = r ** len(spatial)
    base = base_init(key, (*spatial, cin, cout // group), dtype)
    return jnp.tile(base, (1,) * (len(spatial) + 1) + (group,))

  return init


class Upsample2x(nn.Module):
  """Doubles every spatial dim.

  [b, h, w, c] -> [b, 2h, 2w, features] or
  [b, x, y, z, c] -> [b, 2x, 2y, 2z, features]; the number of spatial dims is
  read from the input (x.ndim - 2).
  """

  features: int
  kind: str = "subpixel"
  kernel_size: int = 4
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ndim = x.ndim - 2
    if ndim not in (2, 3):
      raise ValueError(f"Upsample2x takes [b, h, w, c] or [b, x, y, z, c], "
                       f"got {x.shape}")
    if self.kind == "transpose":
      return nn.ConvTranspose(self.features, (self.kernel_size,) * ndim,
                              strides=(2,) * ndim, padding="SAME",
                              use_bias=self.use_bias, dtype=self.dtype)(x)
    if self.kind == "subpixel":
      # A 3x3 conv at the low resolution sees the same input footprint as a
      # 4x4 (or 5x5) stride-2 transposed conv does per output phase.
      y = nn.Conv(self.features * 2 ** ndim, (3,) * ndim, padding="SAME",
                  use_bias=self.use_bias, kernel_init=icnr_init(),
                  dtype=self.dtype)(x)  # [b, *spatial, 2**ndim * features]
      return depth_to_space(y, 2)
    raise ValueError(f"unknown upsample kind {self.kind!r}; "
                     f"expected one of {UPSAMPLE_KINDS}")


def num_resolution_stages(image_size: int) -> tuple[int, int]:
  """Splits image_size into base * 2**stages with base in 4..7, stages >= 1.

  28 -> (7, 2); 32 -> (4, 3); 64 -> (4, 4); 128 -> (4, 5).

  Raises:
    ValueError: image_size has no such form (the message lists examples).
  """
  s, stages = image_size, 0
  while s > 7 and s % 2 == 0:
    s //= 2
    stages += 1
  if stages < 1 or not 4 <= s <= 7:
    raise ValueError(
        f"image size {image_size} is not base*2**k with base in 4..7 and "
        "k >= 1; supported sizes include 8, 14, 16, 28, 32, 56, 64, 128")
  return s, stages


def space_to_depth(x: jax.Array, r: int) -> jax.Array:
  """The inverse of `depth_to_space`: [b, *S, c] -> [b, *(S / r), r**n c]."""
  b, *spatial, c = x.shape
  n = len(spatial)
  if any(d % r for d in spatial):
    raise ValueError(f"spatial shape {tuple(spatial)} not divisible by {r}")
  split = [b]
  for d in spatial:
    split += [d // r, r]
  x = x.reshape(*split, c)
  order = [0] + [1 + 2 * i for i in range(n)] + [2 + 2 * i for i in range(n)]
  x = x.transpose(*order, 1 + 2 * n)
  return x.reshape(b, *(d // r for d in spatial), r ** n * c)


def _stride2_as_stride1(kernel: jax.Array) -> jax.Array:
  """A [4]*n + [c, o] kernel as the [2]*n + [2**n c, o] kernel that acts on
  `space_to_depth(pad(x, 1), 2)`: tap 2q + p of each axis becomes tap q of
  phase p, phases ordered as `space_to_depth` orders them."""
  n = kernel.ndim - 2
  c, o = kernel.shape[-2:]
  k = kernel.reshape(*([2, 2] * n), c, o)  # [q0, p0, q1, p1, ..., c, o]
  order = [2 * i for i in range(n)] + [2 * i + 1 for i in range(n)]
  k = k.transpose(*order, 2 * n, 2 * n + 1)  # [q..., p..., c, o]
  return k.reshape(*([2] * n), 2 ** n * c, o)


class Downsample2x(nn.Module):
  """Halves every spatial side: a 4^n stride-2 "SAME" convolution,
  [b, *S, c] -> [b, *(S / 2), features], S even.

  The same function as `nn.Conv(features, (4,) * n, strides=2,
  padding="SAME")`, with the same parameters ("kernel" [4]*n + [c, f],
  "bias" [f], same initialisers, so checkpoints interchange), computed as a
  stride-1 convolution with a 2^n kernel on the space-to-depth rearrangement
  of the input padded by one. XLA:CPU differentiates a strided 3-D
  convolution pathologically slowly; this form is exact and measured 30-100x
  faster there (benchmarks/volume_conv_bench.py).
  """

  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n = x.ndim - 2
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (4,) * n + (x.shape[-1], self.features))
    padded = jnp.pad(x, [(0, 0)] + [(1, 1)] * n + [(0, 0)])
    y = jax.lax.conv_general_dilated(
        space_to_depth(padded, 2), _stride2_as_stride1(kernel),
        window_strides=(1,) * n, padding="VALID",
        dimension_numbers=(("NHWC", "HWIO", "NHWC") if n == 2 else
                           ("NDHWC", "DHWIO", "NDHWC")))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y
