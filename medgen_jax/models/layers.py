"""Building blocks shared by the image models.

`Upsample2x` doubles the spatial size of a feature map in one of two ways:
  * "transpose": a stride-2 transposed convolution (the classic DCGAN layer).
  * "subpixel": a stride-1 convolution to 4x the channels followed by
    depth-to-space (Shi et al. 2016, "Real-Time Single Image and Video
    Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural
    Network"), initialised ICNR-style (Aitken et al. 2017) so that at init it
    equals nearest-neighbour upsampling of a convolution and has no
    checkerboard pattern.
Both map [b, h, w, c] -> [b, 2h, 2w, features]. The sub-pixel form is the
default because XLA:CPU computes the weight gradient of a stride-2 transposed
convolution very slowly (jax-ml/jax#31662, openxla/xla#34273). Note that the
two are different layers, not two forms of one: the 3x3 convolution to
4*features channels has 2.25x the weights of the 4x4 transposed convolution
(each of its output phases sees a 3x3 input window where the transposed
convolution's sees 2x2). benchmarks/gan_step_bench.py times whole GAN steps
with each; it compares two models, not two implementations of one.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

UPSAMPLE_KINDS = ("subpixel", "transpose")


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """[b, h, w, r*r*c] -> [b, h*r, w*r, c].

  Channel index (i * r + j) * c + k of input pixel (y, x) goes to output
  pixel (y * r + i, x * r + j), channel k.
  """
  b, h, w, rrc = x.shape
  c = rrc // (r * r)
  if c * r * r != rrc:
    raise ValueError(f"channels {rrc} not divisible by r*r={r * r}")
  x = x.reshape(b, h, w, r, r, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * r, w * r, c)


def icnr_init(base_init=nn.initializers.lecun_normal(), r: int = 2):
  """Kernel init whose r*r sub-pixel groups start identical (ICNR)."""

  def init(key, shape, dtype=jnp.float32):
    *spatial, cin, cout = shape
    base = base_init(key, (*spatial, cin, cout // (r * r)), dtype)
    return jnp.tile(base, (1,) * (len(spatial) + 1) + (r * r,))

  return init


class Upsample2x(nn.Module):
  """Doubles height and width: [b, h, w, c] -> [b, 2h, 2w, features]."""

  features: int
  kind: str = "subpixel"
  kernel_size: int = 4
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    if self.kind == "transpose":
      return nn.ConvTranspose(self.features, k, strides=(2, 2), padding="SAME",
                              use_bias=self.use_bias, dtype=self.dtype)(x)
    if self.kind == "subpixel":
      # A 3x3 conv at the low resolution sees the same input footprint as a
      # 4x4 (or 5x5) stride-2 transposed conv does per output phase.
      y = nn.Conv(self.features * 4, (3, 3), padding="SAME",
                  use_bias=self.use_bias, kernel_init=icnr_init(),
                  dtype=self.dtype)(x)
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
