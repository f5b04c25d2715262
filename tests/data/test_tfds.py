"""Tests of the TensorFlow Datasets loader (`--data tfds:NAME`).

The catalog tests use `tfds.testing.mock_data`, which makes random examples
from a dataset's declared features, so they need `tensorflow-datasets` but no
network and no TensorFlow; they skip when it is absent. The end-to-end test of
preparing real files needs TensorFlow too (TFDS encodes images with it) and
skips without it.
"""

import sys

import ml_collections
import numpy as np
import pytest

from medgen_jax.configs import gan
from medgen_jax.data import tfds as tfds_loader
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import (ConfigError, DataError, DownloadError,
                               UnknownNameError)

SKIP_REASON = "needs the tfds extra: pip install 'medgen_jax[tfds]'"


@pytest.fixture(scope="module")
def tfds():
  return pytest.importorskip("tensorflow_datasets", reason=SKIP_REASON)


def _config(name: str, image_size: int = 28, **overrides):
  cfg = gan.get_config().data
  cfg.name = name
  cfg.image_size = image_size
  for key, value in overrides.items():
    setattr(cfg, key, value)
  return cfg


def test_malaria_variable_size_images_are_resized(tfds):
  label = tfds.builder("malaria").info.features["label"]
  with tfds.testing.mock_data(num_examples=40):
    ds = load_dataset(_config("tfds:malaria"))
  assert set(ds.splits) == {"train"}
  train = ds.split("train")
  assert train["image"].shape == (40, 28, 28, 3)
  assert train["image"].dtype == np.uint8
  assert train["label"].dtype == np.int32 and train["label"].shape == (40,)
  assert 0 <= train["label"].min() and train["label"].max() < 2
  assert ds.num_classes == label.num_classes == 2
  assert ds.class_names == tuple(label.names) == ("parasitized", "uninfected")
  assert ds.source == "tfds:malaria" and ds.name == "tfds:malaria"
  assert train["image"].std() > 0  # real pixels, not a blank canvas


def test_colorectal_histology_with_val_split_and_cap(tfds):
  cfg = _config("tfds:colorectal_histology", image_size=32,
                tfds_split_val="test", tfds_max_examples=25)
  with tfds.testing.mock_data(num_examples=40):
    ds = load_dataset(cfg)
  assert set(ds.splits) == {"train", "val"}
  for split in ds.splits.values():
    assert split["image"].shape == (25, 32, 32, 3)  # capped at 25 of 40
    assert split["label"].max() < 8
  assert ds.num_classes == 8 and len(ds.class_names) == 8
  assert ds.class_names[0] == "tumor"


def test_missing_extra_is_a_config_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ConfigError, match=r"pip install 'medgen_jax\[tfds\]'"):
    load_dataset(_config("tfds:malaria"))


def test_unknown_name_suggests_the_close_one(tfds):
  with tfds.testing.mock_data(num_examples=4):
    with pytest.raises(UnknownNameError, match="tfds:malaria") as info:
      load_dataset(_config("tfds:malria"))
  assert "\n" not in str(info.value)
  with pytest.raises(ConfigError, match="names no dataset"):
    load_dataset(_config("tfds:"))


def test_not_prepared_and_download_off(tfds, tmp_path):
  cfg = _config("tfds:malaria", data_dir=str(tmp_path), download=False)
  with pytest.raises(DataError, match="downloading is off"):
    load_dataset(cfg)


def test_network_failure_is_a_one_line_download_error(tfds, tmp_path,
                                                      monkeypatch):
  import requests

  def offline(self, **kwargs):
    raise requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='example.org'): Max retries exceeded\n"
        "Failed to resolve 'example.org'")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      offline)
  with pytest.raises(DownloadError, match="--data-dir DIR") as info:
    load_dataset(_config("tfds:malaria", data_dir=str(tmp_path)))
  assert "\n" not in str(info.value)


def test_find_features_prefers_names_then_the_only_one(tfds):
  f = tfds.features
  named = f.FeaturesDict({
      "image": f.Image(shape=(None, None, 3)),
      "mask": f.Image(shape=(None, None, 1)),
      "diagnosis": f.ClassLabel(names=["benign", "malignant"]),
  })
  assert tfds_loader.find_features(tfds, named, "tfds:x") == (
      "image", "diagnosis")
  no_label = f.FeaturesDict({"image": f.Image(shape=(8, 8, 1)),
                             "text": f.Text()})
  with pytest.raises(DataError, match="no ClassLabel feature"):
    tfds_loader.find_features(tfds, no_label, "tfds:x")
  two_images = f.FeaturesDict({"a": f.Image(shape=(8, 8, 1)),
                               "b": f.Image(shape=(8, 8, 1)),
                               "label": f.ClassLabel(num_classes=2)})
  with pytest.raises(DataError, match="several Image features"):
    tfds_loader.find_features(tfds, two_images, "tfds:x")


def test_resize_image_channels_and_dtypes():
  rng = np.random.default_rng(0)
  rgba = rng.integers(0, 256, (30, 17, 4), dtype=np.uint8)
  out = tfds_loader.resize_image(rgba, 8, source="t")
  assert out.shape == (8, 8, 3) and out.dtype == np.uint8
  gray = np.full((5, 40), 77, np.uint8)  # [h, w], no channel axis
  out = tfds_loader.resize_image(gray, 8, source="t")
  assert out.shape == (8, 8, 1) and np.all(out == 77)  # flat stays flat
  same = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  np.testing.assert_array_equal(
      tfds_loader.resize_image(same, 8, source="t"), same)
  wide = np.full((12, 12, 1), 1000, np.uint16)  # not uint8: float path
  out = tfds_loader.resize_image(wide, 4, source="t")
  assert out.shape == (4, 4, 1) and np.allclose(out, 1000)
  with pytest.raises(DataError, match="channels"):
    tfds_loader.resize_image(np.zeros((4, 4, 5), np.uint8), 4, source="t")


def test_prepares_and_reads_real_files(tfds, tmp_path):
  """Real preparation (no mock): needs TensorFlow, which encodes the PNGs."""
  pytest.importorskip("tensorflow", reason="preparing data needs TensorFlow, "
                      "part of the tfds extra")

  class MedgenTinyCells(tfds.core.GeneratorBasedBuilder):
    """Variable-size RGB 'cells' in three classes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Image(shape=(None, None, 3)),
              "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
          }))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples(30),
              "test": self._generate_examples(6)}

    def _generate_examples(self, n):
      rng = np.random.default_rng(n)
      for i in range(n):
        h, w = rng.integers(6, 40, size=2)
        yield i, {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                  "label": i % 3}

  cfg = _config("tfds:medgen_tiny_cells", image_size=16,
                data_dir=str(tmp_path), tfds_split_train="train[:50%]",
                tfds_split_val="test", tfds_max_examples=10)
  ds = load_dataset(cfg)
  assert ds.split("train")["image"].shape == (10, 16, 16, 3)  # 15, capped
  assert ds.split("val")["image"].shape == (6, 16, 16, 3)
  assert ds.class_names == ("a", "b", "c")
  assert sorted(set(ds.split("val")["label"].tolist())) == [0, 1, 2]
  assert list(tmp_path.glob("medgen_tiny_cells/1.0.0/*.array_record-*"))


def test_a_data_section_without_image_fields_is_a_config_error():
  # Checked before TFDS is imported: no extra needed to get this message.
  cfg = ml_collections.ConfigDict({"name": "tfds:malaria", "data_dir": "",
                                   "download": True, "seed": 0})
  with pytest.raises(ConfigError, match="dataset 'tfds:malaria' is an image "
                     "dataset and needs data.image_size; train it with an "
                     "image family such as `medgen train gan`"):
    load_dataset(cfg)
  cfg.image_size = 28
  with pytest.raises(ConfigError, match="needs data.tfds_max_examples"):
    load_dataset(cfg)


def test_non_integer_options_are_config_errors():
  cfg = ml_collections.ConfigDict(_config("tfds:malaria").to_dict(),
                                  type_safe=False)
  cfg.image_size = 0
  with pytest.raises(ConfigError, match="--image-size .* must be >= 1"):
    load_dataset(cfg)
  cfg.image_size = 28
  cfg.tfds_max_examples = 2.5
  with pytest.raises(ConfigError, match="tfds_max_examples.* must be an "
                     "integer"):
    load_dataset(cfg)


def test_dataset_has_the_image_schema(tfds):
  with tfds.testing.mock_data(num_examples=8):
    ds = load_dataset(_config("tfds:malaria", image_size=16))
  assert ds.modality == "image" and ds.keys == ("image", "label")
  assert ds.metadata["image_shape"] == ds.example_shape("image") == (16, 16, 3)
  assert ds.metadata["num_classes"] == 2


def test_images_that_cannot_fit_in_memory_are_refused_first(monkeypatch):
  monkeypatch.setattr(tfds_loader, "memory_limit_bytes", lambda: 2**30)
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # not reached
  cfg = _config("tfds:malaria", image_size=4096, tfds_max_examples=20000)
  with pytest.raises(ConfigError, match="--image-size 4096 with "
                     "data.tfds_max_examples 20000 per split needs ~.* GiB of "
                     "memory, more than the 1.0 GiB allowed"):
    load_dataset(cfg)
  # Reading whole splits (max_examples <= 0): the count is unknown, no check.
  cfg.tfds_max_examples = 0
  with pytest.raises(ConfigError, match="needs the optional extra"):
    load_dataset(cfg)
