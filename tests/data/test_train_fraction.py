"""data.train_fraction: a seeded, class-stratified subset of the train split
for small-data studies; val and test untouched; bad values refused."""

import numpy as np
import pytest

from medgen_jax.configs import gan as gan_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError, DataError


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


def test_add_samples_appends_to_the_train_split(tmp_path):
  base = load_dataset(_data(0.25))
  extra = {"image": np.full((10, 8, 8, 1), 7, np.uint8),
           "label": np.ones((10,), np.int64)}
  np.savez(tmp_path / "s.npz", **extra)
  cfg = _data(0.25)
  cfg.add_samples = str(tmp_path / "s.npz")
  ds = load_dataset(cfg)
  train = ds.split("train")
  assert len(train) == len(base.split("train")) + 10
  np.testing.assert_array_equal(train["image"][-10:], extra["image"])
  np.testing.assert_array_equal(ds.split("test")["image"],
                                base.split("test")["image"])


def test_add_samples_refuses_mismatched_files(tmp_path):
  np.savez(tmp_path / "wrong.npz", image=np.zeros((4, 16, 16, 1), np.uint8),
           label=np.zeros(4, np.int64))
  np.savez(tmp_path / "nolabel.npz", image=np.zeros((4, 8, 8, 1), np.uint8))
  np.savez(tmp_path / "badclass.npz", image=np.zeros((4, 8, 8, 1), np.uint8),
           label=np.full(4, 5, np.int64))
  for name, match in (("wrong.npz", "uint8\\[4, 16, 16, 1\\]"),
                      ("nolabel.npz", "missing \\['label'\\]"),
                      ("badclass.npz", "do not fit.*value 5"),
                      ("absent.npz", "no such file")):
    cfg = _data(1.0)
    cfg.add_samples = str(tmp_path / name)
    with pytest.raises(DataError, match=match) as e:
      load_dataset(cfg)
    assert str(e.value).startswith(f"--add-samples {tmp_path / name}")
