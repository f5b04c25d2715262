"""IndexSampler: one permutation per epoch, a pure function of (seed, i)."""

import numpy as np
import pytest

from medgen_jax.data.base import Split
from medgen_jax.data.pipeline import (IndexSampler, uint8_to_unit_range,
                                      unit_range_to_uint8)
from medgen_jax.errors import ConfigError


def _split(n=10):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones(
      (1, 4, 4, 1), np.uint8)
  return Split({"image": images, "label": np.arange(n, dtype=np.int32) % 3})


def _old_scheme(n, batch_size, seed, index):
  """The indices BatchSampler produced, computed by hand."""
  per_epoch = n // batch_size
  epoch, pos = divmod(index, per_epoch)
  perm = np.random.default_rng([seed, epoch]).permutation(n)
  return perm[pos * batch_size:(pos + 1) * batch_size]


def test_each_epoch_is_a_fresh_permutation():
  s = IndexSampler(10, batch_size=3, seed=7)
  assert s.batches_per_epoch == 3  # 10 // 3; the remainder is dropped
  epoch0 = np.concatenate([s.indices(i) for i in range(3)])
  epoch1 = np.concatenate([s.indices(i) for i in range(3, 6)])
  assert len(set(epoch0)) == 9 and len(set(epoch1)) == 9  # no repeats
  assert not np.array_equal(epoch0, epoch1)


@pytest.mark.parametrize("n, batch_size, seed", [(10, 3, 7), (64, 16, 0),
                                                 (1000, 7, 12345)])
def test_indices_equal_the_previous_batch_sampler(n, batch_size, seed):
  s = IndexSampler(n, batch_size, seed)
  per_epoch = n // batch_size
  for index in [0, 1, per_epoch - 1, per_epoch, 3 * per_epoch + 2]:
    got = s.indices(index)
    assert got.dtype == np.int64 and got.shape == (batch_size,)
    np.testing.assert_array_equal(got, _old_scheme(n, batch_size, seed, index))


def test_indices_are_pure_functions_of_seed_and_index():
  a = IndexSampler(10, 4, seed=1)
  b = IndexSampler(10, 4, seed=1)
  c = IndexSampler(10, 4, seed=2)
  order = [5, 0, 3, 1, 5]  # random access in any order gives the same batches
  first = {i: a.indices(i) for i in range(6)}
  for i in order:
    np.testing.assert_array_equal(b.indices(i), first[i])
    np.testing.assert_array_equal(a.indices(i), first[i])
  assert any(not np.array_equal(a.indices(i), c.indices(i)) for i in range(4))
  # The result is a copy: changing it does not change later answers.
  x = a.indices(0)
  x[:] = -1
  np.testing.assert_array_equal(a.indices(0), first[0])


def test_take_pairs_every_key_and_scaling():
  split = _split()
  s = IndexSampler(len(split), 4, seed=0)
  idx = s.indices(0)
  batch = split.take(idx)
  assert set(batch) == {"image", "label"}
  assert batch["image"].dtype == np.uint8
  assert batch["image"].shape == (4, 4, 4, 1)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (4,)
  image = uint8_to_unit_range(batch["image"])
  assert image.dtype == np.float32
  # Image k is constant k; labels follow their images.
  np.testing.assert_allclose(image[:, 0, 0, 0], idx * 2 / 255 - 1)
  np.testing.assert_array_equal(batch["label"], idx % 3)


def test_unit_range_round_trip():
  x = np.array([0, 1, 127, 128, 255], np.uint8)
  y = uint8_to_unit_range(x)
  assert y[0] == -1.0 and y[-1] == 1.0
  np.testing.assert_array_equal(unit_range_to_uint8(y), x)
  np.testing.assert_array_equal(unit_range_to_uint8(np.array([-3.0, 3.0])),
                                [0, 255])


def test_batch_larger_than_split():
  with pytest.raises(ConfigError, match="fewer than --batch-size 11"):
    IndexSampler(10, 11, seed=0)
  with pytest.raises(ConfigError, match="the val split has 10 examples"):
    IndexSampler(10, 11, seed=0, name="val")


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_batch_size_must_be_positive(batch_size):
  with pytest.raises(ConfigError, match="--batch-size must be positive"):
    IndexSampler(10, batch_size, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_a_config_error(seed):
  with pytest.raises(ConfigError, match="data.seed"):
    IndexSampler(10, 2, seed=seed)


def test_huge_seed_is_fine():
  s = IndexSampler(10, 2, seed=2**70)
  np.testing.assert_array_equal(s.indices(7), _old_scheme(10, 2, 2**70, 7))
