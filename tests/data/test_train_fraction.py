"""data.train_fraction: a seeded, class-stratified subset of the train split
for small-data studies; val and test untouched; bad values refused."""

import numpy as np
import pytest

from medgen_jax.configs import gan as gan_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError


def _data(fraction, seed=0):
  c = gan_config.get_config()
  c.data.image_size = 8
  c.data.phantoms.num_train = 400
  c.data.phantoms.num_val = 40
  c.data.phantoms.num_test = 40
  c.data.train_fraction = fraction
  c.data.seed = seed
  return c.data


def test_subset_keeps_class_proportions_and_held_out_splits():
  full = load_dataset(_data(1.0))
  part = load_dataset(_data(0.25))
  labels = full.split("train")["label"]
  sub = part.split("train")["label"]
  for c in (0, 1):
    assert (sub == c).sum() == round(0.25 * (labels == c).sum())
  for name in ("val", "test"):
    np.testing.assert_array_equal(part.split(name)["image"],
                                  full.split(name)["image"])
  # every kept example is a training example of the full set, unchanged
  full_rows = {x.tobytes() for x in full.split("train")["image"]}
  assert all(x.tobytes() in full_rows for x in part.split("train")["image"])
  again = load_dataset(_data(0.25))
  np.testing.assert_array_equal(again.split("train")["image"],
                                part.split("train")["image"])
  other = load_dataset(_data(0.25, seed=1))
  assert not np.array_equal(other.split("train")["label"], sub) or not (
      np.array_equal(other.split("train")["image"], part.split("train")["image"]))


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan")])
def test_bad_fraction_is_refused(bad):
  with pytest.raises(ConfigError, match="train_fraction"):
    load_dataset(_data(bad))
