"""Deterministic, random-access example order of an in-memory split.

Batch `i` of a run is a pure function of (seed, i): the examples are read in
the order of a fresh permutation per epoch, drawn from `seed` and the epoch
number. A resumed run therefore needs only its step count to continue with
exactly the batches an uninterrupted run would have seen; there is no
iterator state to checkpoint.

The sampler yields example indices only; the model family (its task) turns
them into its batch, e.g. an image family reads
`split.take(sampler.indices(step))` and scales the images with
`uint8_to_unit_range`.
"""

from __future__ import annotations

import numbers

import numpy as np

from medgen_jax.errors import ConfigError


def uint8_to_unit_range(images: np.ndarray) -> np.ndarray:
  """uint8 0..255 -> float32 [-1, 1]."""
  return images.astype(np.float32) * (2.0 / 255.0) - 1.0


def unit_range_to_uint8(images) -> np.ndarray:
  """float [-1, 1] -> uint8 0..255 (values outside are clipped)."""
  x = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _is_int(value) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class IndexSampler:
  """Example indices of every batch of a split, reshuffled every epoch.

  Each epoch visits `num_examples // batch_size` full batches (the remainder
  of a shuffled epoch is dropped, so every batch has the same shape and the
  step compiles once). Epoch e reads the examples in the order of
  `np.random.default_rng([seed, e]).permutation(num_examples)`.

  Args:
    num_examples: examples in the split (len(split)).
    batch_size: examples per batch.
    seed: seed of the shuffling, a non-negative integer (data.seed).
    name: split name for error messages.
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int,
               name: str = "train"):
    if not _is_int(batch_size) or batch_size < 1:
      raise ConfigError(f"--batch-size must be positive, got {batch_size!r}")
    if not _is_int(seed) or seed < 0:
      raise ConfigError(
          f"the shuffling seed (data.seed) must be a non-negative integer, "
          f"got {seed!r}; pass --set data.seed=0 or another such integer")
    if not _is_int(num_examples) or num_examples < batch_size:
      raise ConfigError(
          f"the {name} split has {num_examples} examples, fewer than "
          f"--batch-size {batch_size}; lower the batch size")
    self.num_examples = int(num_examples)
    self.batch_size = int(batch_size)
    self.seed = int(seed)
    self.batches_per_epoch = self.num_examples // self.batch_size
    self._epoch = -1  # a one-epoch cache; results never depend on it
    self._perm = None

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._perm = rng.permutation(self.num_examples).astype(np.int64)
      self._epoch = epoch
    return self._perm

  def indices(self, index: int) -> np.ndarray:
    """Example indices of batch `index` (0-based, over all epochs).

    Returns:
      int64 [batch_size], a copy (the caller may modify it).
    """
    if not _is_int(index) or index < 0:
      raise ValueError(f"batch index must be a non-negative integer, got "
                       f"{index!r}")
    epoch, pos = divmod(int(index), self.batches_per_epoch)
    perm = self._permutation(epoch)
    return perm[pos * self.batch_size:(pos + 1) * self.batch_size].copy()
