"""Deterministic, random-access batching of an in-memory split.

Batch `i` of a run is a pure function of (seed, i): the examples are read in
the order of a fresh permutation per epoch, drawn from `seed` and the epoch
number. A resumed run therefore needs only its step count to continue with
exactly the batches an uninterrupted run would have seen; there is no
iterator state to checkpoint.

Batch schema (numpy):
  image: float32 [batch, height, width, channels], scaled to [-1, 1].
  label: int32 [batch].
"""

from __future__ import annotations

import numpy as np

from medgen_jax.data.base import ImageSplit
from medgen_jax.errors import ConfigError


def uint8_to_unit_range(images: np.ndarray) -> np.ndarray:
  """uint8 0..255 -> float32 [-1, 1]."""
  return images.astype(np.float32) * (2.0 / 255.0) - 1.0


def unit_range_to_uint8(images) -> np.ndarray:
  """float [-1, 1] -> uint8 0..255 (values outside are clipped)."""
  x = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


class BatchSampler:
  """Random-access batches of a split, reshuffled every epoch.

  Each epoch visits `len(split) // batch_size` full batches (the remainder of
  a shuffled epoch is dropped, so every batch has the same shape and the step
  compiles once).

  Args:
    split: the data.
    batch_size: examples per batch.
    seed: seed of the shuffling.
    name: split name for error messages.
  """

  def __init__(self, split: ImageSplit, batch_size: int, seed: int,
               name: str = "train"):
    if batch_size < 1:
      raise ConfigError(f"--batch-size must be positive, got {batch_size}")
    if len(split) < batch_size:
      raise ConfigError(
          f"the {name} split has {len(split)} examples, fewer than "
          f"--batch-size {batch_size}; lower the batch size")
    self.split = split
    self.batch_size = batch_size
    self.seed = seed
    self.batches_per_epoch = len(split) // batch_size
    self._epoch = -1
    self._perm = None

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._perm = rng.permutation(len(self.split))
      self._epoch = epoch
    return self._perm

  def indices(self, index: int) -> np.ndarray:
    """Example indices of batch number `index` (0-based, over all epochs)."""
    epoch, pos = divmod(index, self.batches_per_epoch)
    perm = self._permutation(epoch)
    return perm[pos * self.batch_size:(pos + 1) * self.batch_size]

  def batch(self, index: int) -> dict[str, np.ndarray]:
    """Batch number `index` in the fixed schema."""
    idx = self.indices(index)
    return {
        "image": uint8_to_unit_range(self.split.images[idx]),
        "label": self.split.labels[idx],
    }

  def stacked(self, index: int, count: int) -> dict[str, np.ndarray]:
    """Batches index*count ... index*count+count-1 stacked on a leading axis.

    Returns arrays of shape [count, batch, ...]; used when one train step
    takes several discriminator updates, each on its own real batch.
    """
    parts = [self.batch(index * count + k) for k in range(count)]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}
