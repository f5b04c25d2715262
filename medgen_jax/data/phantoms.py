"""Embedded default dataset: random CT-like phantom slices (`--data phantoms`).

Each image is an axial slice of a random head phantom in the Shepp-Logan
family, built from ellipses whose intensities add up:

  * a bright outer ellipse (the skull / body outline),
  * a darker inner ellipse that leaves soft tissue inside a thin bright ring,
  * 2-6 internal structures (ventricle-like dark or denser bright ellipses),
  * with probability `lesion_prob`, one small bright lesion inside the tissue.

Label 1 means a lesion is present, 0 that it is absent, so the set supports
class-conditional generation. The sum is clipped to [0, 1], optionally blurred
with a Gaussian (a finite point-spread function) and corrupted with additive
Gaussian noise (quantum noise), then clipped again.

All geometry is drawn in normalised coordinates [-1, 1] x [-1, 1] (x to the
right, y downwards), so the same seed gives the same phantoms at every image
size; only a floor of about one pixel on the thinnest features (ring thickness,
lesion radius) depends on the size, so that they stay visible on small grids.
Edges are anti-aliased by the fraction of a pixel that an ellipse covers (a
partial-volume effect), which keeps small images from looking jagged.

The generator needs only numpy: no file, no network, no scipy.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from medgen_jax.data.base import (SPLITS, Dataset, image_dataset,
                                  to_int_labels, to_uint8_images)
from medgen_jax.data.registry import (DATASETS, format_bytes, integer_option,
                                      memory_limit_bytes, option)
from medgen_jax.errors import ConfigError

CLASS_NAMES = ("no_lesion", "lesion")
MIN_IMAGE_SIZE = 8
MAX_STRUCTURES = 6   # internal ellipses per slice: 2..MAX_STRUCTURES
_CHUNK = 256         # images rendered at once (bounds temporary memory)

# Peak memory of generating one split, measured with tracemalloc (see
# `generation_bytes`): float32 copies of the split alive at once, per pixel.
_PEAK_BYTES_PER_PIXEL_BLUR = 12  # blur: image, blurred, product, and
_PADDED_BYTES_PER_PIXEL = 12     # padded copies of [size + 2 radius, size]
_PEAK_BYTES_PER_PIXEL_SHARP = 14  # no blur: image + to_uint8's temporaries
_CHUNK_BYTES_PER_PIXEL = 12  # _coverage's float32 temporaries per chunk image
_GEOMETRY_BYTES = 512        # ellipse parameters and their float64 temporaries


# ---------------------------------------------------------------------------
# Random phantom geometry.
# ---------------------------------------------------------------------------


def _draw_geometry(n: int, rng: np.random.Generator, lesion_prob: float,
                   pixel: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Draws the ellipses of `n` phantoms.

  Every image draws the same number of random values in the same order (absent
  structures get zero intensity), so the geometry of image i depends only on
  the generator state, not on `lesion_prob` or the image size.

  Args:
    n: number of phantoms.
    rng: source of randomness.
    lesion_prob: probability that a phantom has a lesion.
    pixel: width of one pixel in normalised units (2 / size).

  Returns:
    ellipses: dict of float32 arrays [n, k] over k ellipse slots: "cx", "cy"
      (centre), "a", "b" (half-axes along the rotated x and y), "theta"
      (rotation in radians) and "value" (additive intensity).
    labels: int32 [n], 1 where a lesion is present.
  """
  u = rng.uniform
  # Body outline: taller than wide, centre and tilt jittered a little.
  cx0 = u(-0.03, 0.03, n)
  cy0 = u(-0.03, 0.03, n)
  a0 = u(0.66, 0.76, n)
  b0 = u(0.84, 0.94, n)
  th0 = u(-0.12, 0.12, n)
  skull = u(0.85, 1.0, n)
  # Soft tissue: the outline shrunk by the ring thickness (at least a pixel).
  thick = np.maximum(u(0.05, 0.08, n), 1.0 * pixel)
  cx1 = cx0 + u(-0.01, 0.01, n)
  cy1 = cy0 + u(-0.025, 0.0, n)  # ring a bit thicker at the bottom, as in SL
  a1 = a0 - thick
  b1 = b0 - thick * u(1.0, 1.3, n)
  th1 = th0 + u(-0.03, 0.03, n)
  tissue = u(0.2, 0.3, n)
  inner_value = tissue - skull  # outline + inner = tissue level inside
  inner_min_axis = np.minimum(a1, b1)

  def place_inside(max_axis, rho_cap, size):
    """Centres for ellipses of half-axis <= max_axis inside the tissue.

    In the tissue ellipse's normalised coordinates the centre lies at radius
    rho <= 1 - max_axis / min(a1, b1) - margin, so the whole structure stays
    inside the soft tissue (triangle inequality in that metric).
    """
    cap = 1.0 - max_axis / inner_min_axis[:, None] - 0.06
    cap = np.clip(np.minimum(cap, rho_cap), 0.0, None)
    rho = cap * np.sqrt(u(0.0, 1.0, size))  # uniform over the allowed disc
    phi = u(0.0, 2.0 * np.pi, size)
    ex = rho * np.cos(phi) * a1[:, None]
    ey = rho * np.sin(phi) * b1[:, None]
    c, s = np.cos(th1)[:, None], np.sin(th1)[:, None]
    return cx1[:, None] + c * ex - s * ey, cy1[:, None] + s * ex + c * ey

  # Internal structures: 2..MAX_STRUCTURES per slice, darker or denser.
  k = MAX_STRUCTURES
  count = rng.integers(2, MAX_STRUCTURES + 1, n)
  sa = u(0.06, 0.26, (n, k))
  sb = sa * u(0.35, 1.0, (n, k))
  sth = u(0.0, np.pi, (n, k))
  sval = u(0.06, 0.16, (n, k)) * np.where(u(0.0, 1.0, (n, k)) < 0.5, -1.0, 1.0)
  sval = sval * (np.arange(k)[None, :] < count[:, None])
  scx, scy = place_inside(sa, 1.0, (n, k))

  # The lesion: small, round-ish, clearly denser than any normal structure.
  la = np.maximum(u(0.05, 0.10, (n, 1)), 1.0 * pixel)
  lb = la * u(0.7, 1.0, (n, 1))
  lth = u(0.0, np.pi, (n, 1))
  lval = u(0.4, 0.6, (n, 1))
  lcx, lcy = place_inside(la, 0.65, (n, 1))
  present = u(0.0, 1.0, n) < lesion_prob
  lval = lval * present[:, None]

  col = lambda v: np.asarray(v)[:, None]
  ellipses = {
      "cx": np.concatenate([col(cx0), col(cx1), scx, lcx], axis=1),
      "cy": np.concatenate([col(cy0), col(cy1), scy, lcy], axis=1),
      "a": np.concatenate([col(a0), col(a1), sa, la], axis=1),
      "b": np.concatenate([col(b0), col(b1), sb, lb], axis=1),
      "theta": np.concatenate([col(th0), col(th1), sth, lth], axis=1),
      "value": np.concatenate([col(skull), col(inner_value), sval, lval],
                              axis=1),
  }
  ellipses = {name: v.astype(np.float32) for name, v in ellipses.items()}
  return ellipses, present.astype(np.int32)


def _coverage(ellipses: dict[str, np.ndarray], j: int, sl: slice,
              rows: np.ndarray, cols: np.ndarray, pixel: float) -> np.ndarray:
  """Anti-aliased coverage of ellipse slot `j` on a grid of pixel centres.

  The coverage is a linear ramp one pixel wide across the boundary, using the
  distance to the boundary along the ray from the ellipse's centre,
  d = |p| (1/r - 1), where r is the normalised radius of the offset p.

  Args:
    ellipses: the output of `_draw_geometry`.
    j: ellipse slot.
    sl: the images to draw (m of them).
    rows: float32 [m, h], y coordinates of the grid rows (normalised units).
    cols: float32 [m, w], x coordinates of the grid columns.
    pixel: pixel width in normalised units.

  Returns:
    float32 [m, h, w] in [0, 1].
  """
  e = lambda key: ellipses[key][sl, j][:, None]  # [m, 1]
  c, s = np.cos(e("theta")), np.sin(e("theta"))
  ia2 = (pixel / e("a")) ** 2  # 1 / a^2 in pixel units
  ib2 = (pixel / e("b")) ** 2
  # r^2 = A dx^2 + C dy^2 + B dx dy, offsets in pixels.
  qa = c * c * ia2 + s * s * ib2
  qc = s * s * ia2 + c * c * ib2
  qb = 2.0 * c * s * (ia2 - ib2)
  dx = ((cols - e("cx")) / pixel)[:, None, :]  # [m, 1, w]
  dy = ((rows - e("cy")) / pixel)[:, :, None]  # [m, h, 1]
  tiny = np.float32(1e-12)  # keeps 0/0 at an exact centre hit finite (-> 1)
  q = (qa[:, :, None] * dx * dx + tiny) + qc[:, :, None] * dy * dy
  q += (qb[:, :, None] * dx) * dy  # r^2, [m, h, w]
  p2 = (dx * dx + tiny) + dy * dy  # |p|^2 in pixels^2
  np.divide(p2, q, out=q)
  np.sqrt(q, out=q)  # distance from centre to the boundary along the ray
  np.sqrt(p2, out=p2)
  q -= p2  # distance to the boundary, positive inside
  q += 0.5
  np.clip(q, 0.0, 1.0, out=q)
  return q


def _render(ellipses: dict[str, np.ndarray], size: int) -> np.ndarray:
  """Sums anti-aliased ellipses into float32 [n, size, size] images.

  Small ellipses are drawn only on a square window around each one (the same
  window size for a chunk of images), which is most of the work saved.
  """
  n, slots = ellipses["cx"].shape
  pixel = 2.0 / size
  grid = (-1.0 + (np.arange(size, dtype=np.float32) + 0.5) * pixel)
  out = np.zeros((n, size, size), np.float32)
  for start in range(0, n, _CHUNK):
    sl = slice(start, min(start + _CHUNK, n))
    m = sl.stop - sl.start
    for j in range(slots):
      value = ellipses["value"][sl, j]  # [m]
      if not value.any():
        continue
      # Window: bounding radius plus the one-pixel ramp, in pixels.
      reach = np.maximum(ellipses["a"][sl, j], ellipses["b"][sl, j]).max()
      w = 2 * int(np.ceil(reach / pixel)) + 4
      if w >= 0.75 * size:
        full = np.broadcast_to(grid, (m, size))
        patch = _coverage(ellipses, j, sl, full, full, pixel)
        out[sl] += value[:, None, None] * patch
        continue
      centre = lambda key: (ellipses[key][sl, j] + 1.0) / pixel - 0.5
      r0 = np.clip(np.round(centre("cy") - w / 2), 0, size - w).astype(int)
      c0 = np.clip(np.round(centre("cx") - w / 2), 0, size - w).astype(int)
      ri = r0[:, None] + np.arange(w)  # [m, w] row indices
      ci = c0[:, None] + np.arange(w)  # [m, w] column indices
      patch = _coverage(ellipses, j, sl, grid[ri], grid[ci], pixel)
      idx = np.arange(sl.start, sl.stop)[:, None, None]
      out[idx, ri[:, :, None], ci[:, None, :]] += value[:, None, None] * patch
  np.clip(out, 0.0, 1.0, out=out)
  return out


# ---------------------------------------------------------------------------
# Imaging degradations.
# ---------------------------------------------------------------------------


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
  """Normalised 1-D Gaussian taps, radius int(truncate * sigma + 0.5)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * (x / sigma) ** 2)
  return (taps / taps.sum()).astype(np.float32)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
  """Separable Gaussian blur of [..., H, W] images, sigma in pixels.

  Borders are extended by mirroring (half-sample symmetric, like
  `scipy.ndimage.gaussian_filter`'s default "reflect" mode).
  """
  if sigma <= 0:
    return images
  taps = gaussian_kernel(sigma)
  radius = len(taps) // 2
  for axis in (-2, -1):
    pad = [(0, 0)] * images.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(images, pad, mode="symmetric")
    length = images.shape[axis]
    blurred = np.zeros_like(images)
    for i, w in enumerate(taps):
      window = [slice(None)] * images.ndim
      window[axis] = slice(i, i + length)
      blurred += w * padded[tuple(window)]
    images = blurred
  return images


def generate_phantoms(
    n: int,
    size: int,
    rng: np.random.Generator,
    noise_std: float = 0.0,
    blur_sigma: float = 0.0,
    lesion_prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
  """Generates `n` random CT-like phantom slices of `size` x `size` pixels.

  The geometry is drawn from `rng` first and the noise after it, so two calls
  from equal generator states differ only in noise when only `noise_std`
  differs.

  Args:
    n: number of images (>= 0).
    size: image height and width in pixels (>= 8).
    rng: numpy Generator; the only source of randomness.
    noise_std: std of additive Gaussian noise, in units of the full range.
    blur_sigma: std of the Gaussian blur in pixels (0 = no blur).
    lesion_prob: probability that an image has a lesion (label 1).

  Returns:
    images: float32 [n, size, size] in [0, 1].
    labels: int32 [n], 1 = lesion present, 0 = absent.
  """
  if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
  if size < MIN_IMAGE_SIZE:
    raise ValueError(f"size must be >= {MIN_IMAGE_SIZE}, got {size}")
  if not noise_std >= 0 or not blur_sigma >= 0:
    raise ValueError("noise_std and blur_sigma must be >= 0")
  if not 0.0 <= lesion_prob <= 1.0:
    raise ValueError(f"lesion_prob must be in [0, 1], got {lesion_prob}")
  ellipses, labels = _draw_geometry(n, rng, lesion_prob, 2.0 / size)
  images = _render(ellipses, size)  # [n, size, size]
  images = gaussian_blur(images, blur_sigma)
  if noise_std > 0:
    images += np.float32(noise_std) * rng.standard_normal(
        images.shape, dtype=np.float32)
  np.clip(images, 0.0, 1.0, out=images)
  return images, labels


# ---------------------------------------------------------------------------
# The registered loader.
# ---------------------------------------------------------------------------


def _real(value, flag: str, lo: float, hi: float = math.inf) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ConfigError(f"{flag} must be a number, got {value!r}")
  value = float(value)
  if not (math.isfinite(value) and lo <= value <= hi):
    bound = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]"
    raise ConfigError(f"{flag} must be {bound}, got {value!r}")
  return value


def _options(data_config) -> dict:
  """Reads and validates the phantom options of a `data` config section."""
  size = option(data_config, "image_size", "phantoms")
  opts = option(data_config, "phantoms", "phantoms")

  def flag(name):
    return f"--set data.phantoms.{name}=..."

  return {
      "size": integer_option(size, "--image-size (data.image_size)",
                             MIN_IMAGE_SIZE),
      "seed": integer_option(data_config.get("seed", None),
                             "--set data.seed=...", 0),
      "train": integer_option(opts.get("num_train"), flag("num_train"), 1),
      "val": integer_option(opts.get("num_val"), flag("num_val"), 0),
      "test": integer_option(opts.get("num_test"), flag("num_test"), 0),
      "noise_std": _real(opts.get("noise_std"), flag("noise_std"), 0.0),
      "blur_sigma": _real(opts.get("blur_sigma"), flag("blur_sigma"), 0.0),
      "lesion_prob": _real(opts.get("lesion_prob"), flag("lesion_prob"), 0.0,
                           1.0),
  }


def generation_bytes(counts: tuple[int, ...], size: int,
                     blur_sigma: float) -> int:
  """Peak bytes of generating splits of `counts` images of `size` squared.

  Splits are generated one after the other; while one is generated, the
  uint8 images of the earlier ones are kept. Generating a split holds a few
  float32 copies of it at once (rendering, blurring, adding noise, then
  `to_uint8_images`), plus temporaries of one render chunk, plus the ellipse
  geometry. The constants are measured peaks (tracemalloc) rounded up.

  Args:
    counts: images per split, in generation order.
    size: image height and width in pixels.
    blur_sigma: the blur's std in pixels (its copies set the peak).

  Returns:
    An estimate, from above, of the peak number of bytes.
  """
  pixels = size * size  # Python ints: no overflow for absurd sizes
  if blur_sigma > 0:  # gaussian_blur pads by the kernel radius (float32)
    radius = int(4.0 * blur_sigma + 0.5)
    image = (_PEAK_BYTES_PER_PIXEL_BLUR * pixels
             + _PADDED_BYTES_PER_PIXEL * size * (size + 2 * radius))
  else:
    image = _PEAK_BYTES_PER_PIXEL_SHARP * pixels
  peak = kept = 0
  for n in counts:
    if n == 0:
      continue
    split = (n * (image + _GEOMETRY_BYTES)
             + min(n, _CHUNK) * _CHUNK_BYTES_PER_PIXEL * pixels)
    peak = max(peak, kept + split)
    kept += n * pixels  # the uint8 result
  return max(peak, kept)


def _check_memory(opts: dict) -> None:
  """Refuses, before generating, splits that would not fit in memory."""
  limit = memory_limit_bytes()
  counts = tuple(opts[name] for name in SPLITS)
  need = generation_bytes(counts, opts["size"], opts["blur_sigma"])
  if limit is not None and need > limit:
    raise ConfigError(
        f"--image-size {opts['size']} with "
        f"{'+'.join(str(n) for n in counts)} phantoms (data.phantoms."
        f"num_train+num_val+num_test) needs ~{format_bytes(need)} of memory to "
        f"generate, more than the {format_bytes(limit)} allowed (half of this "
        "machine's memory); lower --image-size or the numbers of phantoms")


@DATASETS.register("phantoms")
def load_phantoms(data_config) -> Dataset:
  """Generates the phantom dataset described by a `data` config section.

  Split `train`, `val`, `test` is drawn from `default_rng([seed, index])` with
  index 0, 1, 2: independent streams, so changing one split's size leaves the
  others unchanged. A split of size 0 (val or test) is left out.

  Raises:
    ConfigError: an option is invalid or absent (a `data` section without
      image fields), or the splits would not fit in memory (checked before
      generating anything).
  """
  opts = _options(data_config)
  _check_memory(opts)
  source = f"generated phantoms (seed={opts['seed']})"
  splits = {}
  for index, name in enumerate(SPLITS):
    if opts[name] == 0:
      continue
    rng = np.random.default_rng([opts["seed"], index])
    images, labels = generate_phantoms(
        opts[name], opts["size"], rng, noise_std=opts["noise_std"],
        blur_sigma=opts["blur_sigma"], lesion_prob=opts["lesion_prob"])
    images = to_uint8_images(images, source=source, key=f"{name}/images")
    labels = to_int_labels(labels, len(images), source=source,
                           key=f"{name}/labels", num_classes=len(CLASS_NAMES))
    splits[name] = (images, labels)
  return image_dataset("phantoms", splits, class_names=CLASS_NAMES,
                       source=source)
