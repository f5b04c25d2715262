"""The TensorFlow Datasets catalog as a data source: `--data tfds:NAME`.

    medgen train gan --data tfds:malaria --image-size 64
    medgen train gan --data tfds:colorectal_histology --data-dir ~/tfds

Any catalog dataset with one image feature and one class-label feature works
(malaria, colorectal_histology, patch_camelyon, ...). The loader

  * finds the image and label features in `info.features` (the keys 'image'
    and 'label' when present, otherwise the only `Image` and the only
    `ClassLabel` feature),
  * prepares the data once into `--data-dir` (default: TFDS's own,
    $TFDS_DATA_DIR or ~/tensorflow_datasets), as ArrayRecord files when the
    `array_record` package is there,
  * reads the first `tfds_max_examples` examples of `tfds_split_train` (and of
    `tfds_split_val` when set) and resizes each image to `image_size` squared
    with Pillow (bilinear, antialiased when shrinking; the aspect ratio is not
    kept, so cells of any shape fill the frame).

Reading goes through `tfds.data_source` random access, which needs no
TensorFlow. Data already prepared as TFRecord (TFDS's default format, as
`tfds.load` writes it) is read with `tfds.as_numpy` instead, which does.
Preparing the data from its original files runs the dataset's own TFDS code,
and that uses TensorFlow, so the `tfds` extra installs it.

`tensorflow_datasets` is imported only here, lazily: the core package never
needs it.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import socket
import urllib.error
from typing import Any, Iterable

import numpy as np
from PIL import Image

from medgen_jax.data.base import (Dataset, image_dataset, to_int_labels,
                                  to_uint8_images)
from medgen_jax.data.registry import (format_bytes, integer_option,
                                      memory_limit_bytes, option)
from medgen_jax.errors import (ConfigError, DataError, DownloadError,
                               UnknownNameError)

PREFIX = "tfds:"
INSTALL_HINT = "pip install 'medgen_jax[tfds]'"
CATALOG_URL = "https://www.tensorflow.org/datasets/catalog"
IMAGE_KEY = "image"
LABEL_KEY = "label"


def _one_line(text: object, limit: int = 200) -> str:
  line = " ".join(str(text).split())
  return line if len(line) <= limit else line[:limit - 3] + "..."


def _base_name(name: str) -> str:
  """"patch_camelyon/config:2.0.0" -> "patch_camelyon"."""
  return name.split("/")[0].split(":")[0]


def _import_tfds(flag: str):
  """Returns the `tensorflow_datasets` module or raises ConfigError."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    # A missing module other than TFDS itself means a broken install.
    broken = e.name not in (None, "tensorflow_datasets")
    detail = f" (importing it failed: {_one_line(e)})" if broken else ""
    raise ConfigError(
        f"--data {flag} needs the optional extra: {INSTALL_HINT}{detail}"
    ) from None
  return tfds


def _missing_module(e: ImportError) -> str:
  """The module named by an ImportError, also when TFDS re-wrapped it."""
  found = re.search(r"No module named '([^']+)'", str(e))
  return found.group(1) if found else (e.name or "?")


def _needs_module(source: str, what: str, e: ImportError) -> ConfigError:
  return ConfigError(
      f"{source}: {what} needs the Python module {_missing_module(e)!r}; "
      f"install the full extra: {INSTALL_HINT}")


def _make_builder(tfds, name: str, data_dir: str | None, source: str):
  """`tfds.builder(name)`, with TFDS's errors turned into one-line ones."""
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError:
    base = _base_name(name)
    names = tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(base, names, n=1)
    maybe = f" Did you mean tfds:{close[0]}?" if close else ""
    raise UnknownNameError(
        f"unknown dataset (--data) {source!r}: TensorFlow Datasets has no "
        f"dataset {base!r}; see {CATALOG_URL} for names (e.g. tfds:malaria, "
        f"tfds:colorectal_histology, tfds:patch_camelyon).{maybe}") from None
  except ImportError as e:
    raise _needs_module(source, "building the dataset", e) from None
  except (ValueError, AssertionError) as e:  # a bad config or version
    reason = re.sub(r"^Failed to construct dataset .*?\": ", "", str(e))
    reason = _one_line(reason).rstrip(" :.")
    raise ConfigError(
        f"--data {source}: {reason}; see {CATALOG_URL}/{_base_name(name)} "
        "for its configs and versions") from None


def find_features(tfds, features, source: str) -> tuple[str, str]:
  """Picks the image and class-label features of a dataset.

  Args:
    tfds: the `tensorflow_datasets` module.
    features: the builder's `info.features` (a FeaturesDict).
    source: "tfds:NAME", for error messages.

  Returns:
    (image key, label key) among the top-level features.
  """
  items = dict(features.items())
  kinds = ", ".join(f"{k}: {type(f).__name__}" for k, f in items.items())

  def pick(kind: type, preferred: str, what: str) -> str:
    keys = [k for k, f in items.items() if isinstance(f, kind)]
    if preferred in keys:
      return preferred
    if len(keys) == 1:
      return keys[0]
    problem = (f"has several {kind.__name__} features {keys} and none is "
               f"called {preferred!r}" if keys
               else f"has no {kind.__name__} feature")
    raise DataError(
        f"{source} {problem} (its features: {kinds}); --data tfds:NAME needs "
        f"one {what}, so pick a dataset with one Image and one ClassLabel "
        "feature")

  image_key = pick(tfds.features.Image, IMAGE_KEY, "image per example")
  label_key = pick(tfds.features.ClassLabel, LABEL_KEY, "class label")
  return image_key, label_key


def _network_errors(tfds) -> tuple[type[BaseException], ...]:
  import requests  # pylint: disable=g-import-not-at-top  # a TFDS dependency
  return (tfds.download.DownloadError, requests.exceptions.RequestException,
          urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror)


def _prepare(tfds, builder, name: str, download: bool, source: str) -> None:
  """Downloads and prepares the data unless it already is in the data dir."""
  where = builder.data_dir_root
  if builder.is_prepared():
    return
  fix = ("to pre-download, run this command once with --data-dir DIR on a "
         "machine with network access, then copy DIR here and pass "
         "--data-dir DIR")
  if not download:
    raise DataError(
        f"{source} is not prepared in {where} and downloading is off "
        f"(data.download=False); {fix}, or set data.download=True")
  kwargs = {}
  if importlib.util.find_spec("array_record") is not None:
    kwargs["file_format"] = "array_record"  # random access, read without TF
  try:
    builder.download_and_prepare(**kwargs)
  except ImportError as e:
    raise _needs_module(source, "preparing the data", e) from None
  except AssertionError as e:
    if "manual" not in str(e).lower():
      raise
    raise DownloadError(
        f"{source} needs a manual download: {_one_line(e, 300)}; see "
        f"{CATALOG_URL}/{_base_name(name)}") from None
  except _network_errors(tfds) as e:
    raise DownloadError(
        f"could not download {source} into {where}: {_one_line(e, 160)}; "
        f"{fix}") from None


def _examples(tfds, builder, split: str, limit: int,
              source: str) -> Iterable[dict[str, Any]]:
  """Yields up to `limit` (all when <= 0) examples of `split` as numpy."""
  try:
    data = builder.as_data_source(split=split)
  except NotImplementedError:  # prepared as TFRecord: no random access
    data = None
  except ValueError as e:  # unknown split name, bad slice
    raise ConfigError(
        f"{source}: cannot read split {split!r}: {_one_line(e)} (set "
        "data.tfds_split_train / data.tfds_split_val)") from None
  if data is not None:
    # The first `limit` records are what TFDS's `split[:limit]` would read;
    # indexing stays valid when the split is shorter or already sliced.
    n = len(data) if limit <= 0 else min(len(data), limit)
    for i in range(n):
      yield data[i]
    return
  what = f"reading the TFRecord files in {builder.data_dir}"
  if importlib.util.find_spec("tensorflow") is None:
    raise _needs_module(source, what, ModuleNotFoundError(name="tensorflow"))
  try:
    ds = builder.as_dataset(split=split, shuffle_files=False)
  except ImportError as e:
    raise _needs_module(source, what, e) from None
  except ValueError as e:
    raise ConfigError(
        f"{source}: cannot read split {split!r}: {_one_line(e)} (set "
        "data.tfds_split_train / data.tfds_split_val)") from None
  if limit > 0:
    ds = ds.take(limit)
  yield from tfds.as_numpy(ds)


def resize_image(image: np.ndarray, size: int, *, source: str) -> np.ndarray:
  """Resizes one image to [size, size, c] with Pillow, c in {1, 3}.

  Args:
    image: [h, w], [h, w, c] (c in 1..4; an alpha channel is dropped).
    size: output height and width.
    source: for error messages.

  Returns:
    [size, size, c]: uint8 for uint8 input, float32 otherwise (checked later
    by `to_uint8_images`).
  """
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
    raise DataError(
        f"{source}: an image has shape {image.shape}; expected "
        "[height, width, channels] with 1 (gray) or 3 (RGB) channels")
  if image.shape[-1] in (2, 4):  # gray + alpha, RGB + alpha
    image = image[..., :-1]
  h, w, c = image.shape
  if (h, w) == (size, size):
    return image
  if image.dtype == np.uint8:
    pil = Image.fromarray(image[..., 0] if c == 1 else image)  # L or RGB
    out = pil.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out).reshape(size, size, c)
  # Other dtypes: each channel as a 32-bit float image (Pillow mode "F").
  channels = [
      np.asarray(Image.fromarray(image[..., k].astype(np.float32)).resize(
          (size, size), Image.Resampling.BILINEAR)) for k in range(c)]
  return np.stack(channels, axis=-1)


def _read_split(tfds, builder, split: str, *, limit: int, size: int,
                image_key: str, label_key: str, num_classes: int,
                source: str) -> tuple[np.ndarray, np.ndarray]:
  images, labels = [], []
  for example in _examples(tfds, builder, split, limit, source):
    images.append(resize_image(example[image_key], size, source=source))
    labels.append(example[label_key])
  if not images:
    raise DataError(f"{source}: split {split!r} is empty; choose another "
                    "split with data.tfds_split_train / data.tfds_split_val")
  key = f"{split}/{image_key}"
  x = to_uint8_images(np.stack(images), source=source, key=key)  # [n,s,s,c]
  y = to_int_labels(np.asarray(labels), len(x), source=source,
                    key=f"{split}/{label_key}", num_classes=num_classes)  # [n]
  return x, y


def _check_memory(size: int, limit: int, num_splits: int) -> None:
  """Refuses, before reading, a cap and size whose images cannot fit.

  Each split holds up to `limit` uint8 images of [size, size, <= 3]; while a
  split is stacked, its list of images and the stacked copy coexist. With
  `limit` <= 0 (whole splits) the count is unknown until read: no check.
  """
  bound = memory_limit_bytes()
  if limit <= 0 or bound is None:
    return
  need = (num_splits + 1) * limit * size * size * 3
  if need > bound:
    raise ConfigError(
        f"--image-size {size} with data.tfds_max_examples {limit} per split "
        f"needs ~{format_bytes(need)} of memory, more than the "
        f"{format_bytes(bound)} allowed (half of this machine's memory); "
        "lower --image-size or data.tfds_max_examples")


def load(data_config) -> Dataset:
  """Loads `data_config.name` = "tfds:NAME" from the TFDS catalog.

  Args:
    data_config: the `data` section of an experiment config; reads `name`,
      `data_dir`, `image_size`, `download`, `tfds_split_train`,
      `tfds_split_val` and `tfds_max_examples` (<= 0: the whole split).

  Returns:
    An image Dataset with a "train" split (and "val" when `tfds_split_val` is
    set) of uint8 [n, image_size, image_size, c] images and int32 labels.

  Raises:
    ConfigError: the `tfds` extra is missing, a split cannot be read, or the
      `data` section lacks the image options (a non-image family's config).
    UnknownNameError: NAME is not in the catalog.
    DownloadError: the data could not be fetched.
    DataError: the dataset lacks an image or class-label feature, or is
      not prepared while downloading is off.
  """
  flag = str(data_config.name)
  name = flag[len(PREFIX):].strip() if flag.startswith(PREFIX) else flag
  if not name:
    raise ConfigError(f"--data {flag!r} names no dataset; use tfds:NAME, "
                      "e.g. tfds:malaria")
  source = PREFIX + name
  size = integer_option(option(data_config, "image_size", source),
                        "--image-size (data.image_size)", 1)
  limit = integer_option(option(data_config, "tfds_max_examples", source),
                         "--set data.tfds_max_examples=...")
  train_split = str(option(data_config, "tfds_split_train", source)).strip()
  val_split = str(data_config.get("tfds_split_val", "") or "").strip()
  _check_memory(size, limit, 2 if val_split else 1)
  tfds = _import_tfds(flag)
  data_dir = str(data_config.get("data_dir", "") or "").strip() or None
  builder = _make_builder(tfds, name, data_dir, source)
  features = builder.info.features
  image_key, label_key = find_features(tfds, features, source)
  label_feature = features[label_key]
  num_classes = int(label_feature.num_classes)
  _prepare(tfds, builder, name, bool(data_config.get("download", True)),
           source)

  read = dict(limit=limit, size=size, image_key=image_key,
              label_key=label_key, num_classes=num_classes, source=source)
  splits = {"train": _read_split(tfds, builder, train_split or "train",
                                 **read)}
  if val_split:
    splits["val"] = _read_split(tfds, builder, val_split, **read)
  return image_dataset(flag, splits, source=source,
                       class_names=[str(n) for n in label_feature.names])
