"""Tests of the MedMNIST loaders: the real file, the download path, bad input.

No test touches the network: downloads go to a local HTTP server on
127.0.0.1, and every test gets its own empty cache folder.
"""

import hashlib
import http.server
import io
import logging
import pathlib
import socket
import threading
import zipfile

import ml_collections
import numpy as np
import pytest

from medgen_jax.configs import gan
from medgen_jax.data import medmnist
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.errors import (ConfigError, DataError, DownloadError,
                               UnknownNameError)


def _config(name="pneumoniamnist", **overrides):
  cfg = gan.get_config().data
  cfg.name = name
  for key, value in overrides.items():
    setattr(cfg, key, value)
  return cfg


def _arrays(n=(6, 3, 3), size=28, channels=None, num_classes=2, seed=0):
  """Synthetic MedMNIST-style arrays: uint8 [n, s, s(, c)], labels [n, 1]."""
  rng = np.random.default_rng(seed)
  out = {}
  for split, k in zip(("train", "val", "test"), n):
    shape = (k, size, size) + ((channels,) if channels else ())
    out[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
    out[f"{split}_labels"] = (np.arange(k) % num_classes).astype(
        np.uint8)[:, None]
  return out


def _npz_bytes(**arrays) -> bytes:
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  return buf.getvalue()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
  cache = tmp_path / "cache"
  monkeypatch.setenv("MEDGEN_CACHE_DIR", str(cache))
  monkeypatch.delenv("MEDGEN_MEDMNIST_URL", raising=False)
  return cache


# -- registry -----------------------------------------------------------------


def test_registers_every_2d_single_label_dataset():
  expected = {"pathmnist", "dermamnist", "octmnist", "pneumoniamnist",
              "retinamnist", "breastmnist", "bloodmnist", "tissuemnist",
              "organamnist", "organcmnist", "organsmnist"}
  assert set(medmnist.INFO) == expected
  assert expected | {"chestmnist"} <= set(DATASETS.names())
  info = medmnist.INFO["pneumoniamnist"]
  assert info.class_names == ("normal", "pneumonia") and info.channels == 1
  assert info.file_name(28) == "pneumoniamnist.npz"
  assert info.file_name(64) == "pneumoniamnist_64.npz"
  assert info.url(28) == ("https://zenodo.org/records/10519652/files/"
                          "pneumoniamnist.npz?download=1")
  for i in medmnist.INFO.values():
    assert all(len(m) == 32 for m in i.md5.values())


def test_chestmnist_says_multi_label():
  with pytest.raises(ConfigError, match="multi-label"):
    DATASETS.get("chestmnist")(_config("chestmnist"))


def test_unknown_name_suggests_the_right_one():
  with pytest.raises(UnknownNameError, match="pneumoniamnist"):
    load_dataset(_config("pneumonia-mnist"))


# -- the real file ------------------------------------------------------------


def test_real_pneumoniamnist(shared_data_dir, caplog):
  folder = shared_data_dir / "medmnist"
  if not (folder / "pneumoniamnist.npz").is_file():
    pytest.skip(f"{folder}/pneumoniamnist.npz is absent")
  with caplog.at_level(logging.WARNING, logger="medgen_jax"):
    ds = DATASETS.get("pneumoniamnist")(_config(data_dir=str(folder)))
  assert {k: len(s) for k, s in ds.splits.items()} == {
      "train": 4708, "val": 524, "test": 624}
  assert ds.example_shape("image") == (28, 28, 1)
  assert ds.num_classes == 2 and ds.class_names == ("normal", "pneumonia")
  for s in ds.splits.values():
    assert s["image"].dtype == np.uint8 and s["label"].dtype == np.int32
    assert set(np.unique(s["label"])) <= {0, 1}
  assert np.bincount(ds.split("train")["label"]).tolist() == [1214, 3494]
  assert any("MD5" in r.getMessage() and "official" in r.getMessage()
             for r in caplog.records)


# -- download -----------------------------------------------------------------


class _Server:
  """A static file server on 127.0.0.1 that counts its requests."""

  def __init__(self, root: pathlib.Path):
    self.requests = 0
    outer = self

    class Handler(http.server.SimpleHTTPRequestHandler):

      def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(root), **kwargs)

      def do_GET(self):
        outer.requests += 1
        super().do_GET()

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
    self.thread = threading.Thread(
        target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
        daemon=True)
    self.thread.start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()
    self.thread.join(timeout=5)


@pytest.fixture
def served(tmp_path, monkeypatch):
  """Serves a synthetic pneumoniamnist.npz whose MD5 is made the official."""
  root = tmp_path / "www"
  (root / "files").mkdir(parents=True)
  payload = _npz_bytes(**_arrays())
  (root / "files" / "pneumoniamnist.npz").write_bytes(payload)
  monkeypatch.setitem(medmnist.INFO["pneumoniamnist"].md5, 28,
                      hashlib.md5(payload).hexdigest())
  server = _Server(root)
  monkeypatch.setenv("MEDGEN_MEDMNIST_URL", server.url)
  yield server
  server.close()


def test_download_then_cache(served, _isolated_cache):
  ds = DATASETS.get("pneumoniamnist")(_config())
  cached = _isolated_cache / "medmnist" / "pneumoniamnist.npz"
  assert served.requests == 1 and cached.is_file()
  assert ds.source == str(cached) and len(ds.split("train")) == 6
  assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]
  ds2 = DATASETS.get("pneumoniamnist")(_config(download=False))
  assert served.requests == 1
  np.testing.assert_array_equal(ds2.split("val")["image"],
                                ds.split("val")["image"])


def test_download_checksum_mismatch_leaves_nothing(served, _isolated_cache,
                                                   monkeypatch):
  monkeypatch.setitem(medmnist.INFO["pneumoniamnist"].md5, 28, "0" * 32)
  with pytest.raises(DownloadError, match="MD5"):
    DATASETS.get("pneumoniamnist")(_config())
  assert served.requests == 1
  assert list((_isolated_cache / "medmnist").iterdir()) == []


def test_download_missing_on_server(served):
  with pytest.raises(DownloadError, match="404"):
    DATASETS.get("pneumoniamnist")(_config(image_size=64))


def test_unreachable_server(monkeypatch, _isolated_cache):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  monkeypatch.setenv("MEDGEN_MEDMNIST_URL", f"http://127.0.0.1:{port}")
  cached = _isolated_cache / "medmnist" / "pneumoniamnist.npz"
  with pytest.raises(DownloadError) as err:
    DATASETS.get("pneumoniamnist")(_config())
  msg = str(err.value)
  assert "\n" not in msg
  assert f"127.0.0.1:{port}/pneumoniamnist.npz" in msg
  assert str(cached) in msg and "--data-dir" in msg
  assert list(cached.parent.iterdir()) == []


def test_no_download_and_not_cached(_isolated_cache):
  with pytest.raises(DataError, match="--data-dir") as err:
    DATASETS.get("pneumoniamnist")(_config(download=False))
  assert str(_isolated_cache / "medmnist" / "pneumoniamnist.npz") in str(
      err.value)


def test_corrupt_cached_file_is_rejected(_isolated_cache):
  cached = _isolated_cache / "medmnist" / "pneumoniamnist.npz"
  cached.parent.mkdir(parents=True)
  cached.write_bytes(_npz_bytes(**_arrays()))
  with pytest.raises(DataError, match="cached file has MD5"):
    DATASETS.get("pneumoniamnist")(_config())


# -- bad input ----------------------------------------------------------------


def _load_file(tmp_path, name="pneumoniamnist.npz", size=28, **arrays):
  folder = tmp_path / "data"
  folder.mkdir(exist_ok=True)
  np.savez(folder / name, **arrays)
  return DATASETS.get("pneumoniamnist")(
      _config(data_dir=str(folder), image_size=size))


def test_local_synthetic_file_loads(tmp_path):
  ds = _load_file(tmp_path, **_arrays())
  assert ds.example_shape("image") == (28, 28, 1)
  assert ds.source == str(tmp_path / "data" / "pneumoniamnist.npz")


def test_missing_file_with_data_dir(tmp_path):
  with pytest.raises(DataError) as err:
    DATASETS.get("pneumoniamnist")(_config(data_dir=str(tmp_path)))
  msg = str(err.value)
  assert str(tmp_path / "pneumoniamnist.npz") in msg
  assert "https://zenodo.org/records/10519652/files/pneumoniamnist.npz" in msg


def test_not_an_npz(tmp_path):
  (tmp_path / "pneumoniamnist.npz").write_text("<html>not found</html>")
  with pytest.raises(DataError, match="not a readable .npz"):
    DATASETS.get("pneumoniamnist")(_config(data_dir=str(tmp_path)))


def test_missing_train_images(tmp_path):
  arrays = _arrays()
  del arrays["train_images"]
  with pytest.raises(DataError, match="train_images.*found keys"):
    _load_file(tmp_path, **arrays)


def test_split_without_labels(tmp_path):
  arrays = _arrays()
  del arrays["val_labels"]
  with pytest.raises(DataError, match="val_labels"):
    _load_file(tmp_path, **arrays)


def test_labels_length_mismatch(tmp_path):
  arrays = _arrays()
  arrays["train_labels"] = arrays["train_labels"][:-1]
  with pytest.raises(DataError, match="labels but there are"):
    _load_file(tmp_path, **arrays)


def test_label_out_of_range(tmp_path):
  arrays = _arrays()
  arrays["test_labels"][0] = 2
  with pytest.raises(DataError, match="2 classes"):
    _load_file(tmp_path, **arrays)


def test_float_images_with_nan(tmp_path):
  arrays = _arrays()
  images = arrays["train_images"].astype(np.float32)
  images[2, 3, 4] = np.nan
  arrays["train_images"] = images
  with pytest.raises(DataError, match="NaN"):
    _load_file(tmp_path, **arrays)


def test_wrong_channel_count(tmp_path):
  with pytest.raises(DataError, match="3 channel.*pneumoniamnist.*have 1"):
    _load_file(tmp_path, **_arrays(channels=3))


def test_wrong_image_size(tmp_path):
  with pytest.raises(DataError, match="28x28 but --image-size is 64"):
    _load_file(tmp_path, name="pneumoniamnist_64.npz", size=64, **_arrays())


def test_empty_split(tmp_path):
  with pytest.raises(DataError, match="empty"):
    _load_file(tmp_path, **_arrays(n=(6, 0, 3)))


def test_header_bomb_is_refused_before_allocating(tmp_path):
  # A file whose train_images header declares 10^12 images it does not hold.
  folder = tmp_path / "data"
  folder.mkdir()
  path = folder / "pneumoniamnist.npz"
  np.savez(path, **_arrays())
  with zipfile.ZipFile(path) as zf:
    members = {n: zf.read(n) for n in zf.namelist()}
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      header, {"descr": "|u1", "fortran_order": False,
               "shape": (10**12, 28, 28)})
  members["train_images.npy"] = header.getvalue() + b"\0" * 784
  with zipfile.ZipFile(path, "w") as zf:
    for name, data in members.items():
      zf.writestr(name, data)
  with pytest.raises(DataError) as err:
    DATASETS.get("pneumoniamnist")(_config(data_dir=str(folder)))
  msg = str(err.value)
  assert "\n" not in msg and str(path) in msg and "'train_images'" in msg
  assert "declares shape (1000000000000, 28, 28)" in msg
  assert "replace it with the official MedMNIST file" in msg


def test_pickled_arrays_are_refused(tmp_path):
  arrays = _arrays()
  arrays["train_labels"] = arrays["train_labels"].astype(object)
  with pytest.raises(DataError, match="'train_labels' holds Python objects"):
    _load_file(tmp_path, **arrays)


def test_a_data_section_without_image_size_is_a_config_error():
  cfg = ml_collections.ConfigDict({"name": "pneumoniamnist", "data_dir": "",
                                   "download": True, "seed": 0})
  with pytest.raises(ConfigError, match="dataset 'pneumoniamnist' is an image "
                     "dataset and needs data.image_size; train it with an "
                     "image family such as `medgen train gan`"):
    load_dataset(cfg)


@pytest.mark.parametrize("size", [28.5, "28", True])
def test_non_integer_image_size_is_a_config_error(size):
  cfg = ml_collections.ConfigDict(_config().to_dict(), type_safe=False)
  cfg.image_size = size
  with pytest.raises(ConfigError, match="--image-size .* must be an integer"):
    load_dataset(cfg)


def test_dataset_has_the_image_schema(tmp_path):
  ds = _load_file(tmp_path, **_arrays())
  assert ds.modality == "image" and ds.keys == ("image", "label")
  assert ds.metadata["image_shape"] == (28, 28, 1)
  assert ds.metadata["class_names"] == ("normal", "pneumonia")
  assert {k: len(s) for k, s in ds.splits.items()} == {
      "train": 6, "val": 3, "test": 3}
