"""Deterministic batching: a permutation per epoch, pure in (seed, index)."""

import numpy as np
import pytest

from medgen_jax.data.base import ImageSplit
from medgen_jax.data.pipeline import (BatchSampler, uint8_to_unit_range,
                                      unit_range_to_uint8)
from medgen_jax.errors import ConfigError


def _split(n=10):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones(
      (1, 4, 4, 1), np.uint8)
  return ImageSplit(images=images, labels=np.arange(n, dtype=np.int32) % 3)


def test_each_epoch_is_a_fresh_permutation():
  s = BatchSampler(_split(10), batch_size=3, seed=7)
  assert s.batches_per_epoch == 3  # 10 // 3; the remainder is dropped
  epoch0 = np.concatenate([s.indices(i) for i in range(3)])
  epoch1 = np.concatenate([s.indices(i) for i in range(3, 6)])
  assert len(set(epoch0)) == 9 and len(set(epoch1)) == 9  # no repeats
  assert not np.array_equal(epoch0, epoch1)


def test_batches_are_pure_functions_of_seed_and_index():
  a = BatchSampler(_split(), 4, seed=1)
  b = BatchSampler(_split(), 4, seed=1)
  c = BatchSampler(_split(), 4, seed=2)
  order = [5, 0, 3, 1]  # random access in any order gives the same batches
  for i in order:
    np.testing.assert_array_equal(a.batch(i)["image"], b.batch(i)["image"])
  assert any(not np.array_equal(a.indices(i), c.indices(i)) for i in range(4))


def test_schema_and_scaling():
  s = BatchSampler(_split(), 4, seed=0)
  batch = s.batch(0)
  assert batch["image"].dtype == np.float32 and batch["image"].shape == (4, 4, 4, 1)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (4,)
  # Image k is constant k; labels follow their images.
  idx = s.indices(0)
  np.testing.assert_allclose(batch["image"][:, 0, 0, 0], idx * 2 / 255 - 1)
  np.testing.assert_array_equal(batch["label"], idx % 3)
  stacked = s.stacked(1, 2)  # batches 2 and 3
  assert stacked["image"].shape == (2, 4, 4, 4, 1)
  np.testing.assert_array_equal(stacked["label"][1], s.batch(3)["label"])


def test_unit_range_round_trip():
  x = np.array([0, 1, 127, 128, 255], np.uint8)
  y = uint8_to_unit_range(x)
  assert y[0] == -1.0 and y[-1] == 1.0
  np.testing.assert_array_equal(unit_range_to_uint8(y), x)
  np.testing.assert_array_equal(unit_range_to_uint8(np.array([-3.0, 3.0])),
                                [0, 255])


def test_batch_larger_than_split():
  with pytest.raises(ConfigError, match="fewer than --batch-size 11"):
    BatchSampler(_split(10), 11, seed=0)
