"""The in-memory image dataset schema and its validation.

Every image loader returns an `ImageDataset`: named splits of uint8 images in
NHWC layout with int32 class labels. Validation checks meaning (rank, channel
count, value range, NaN, label range, matching lengths, non-empty splits), not
the quirks of one file, and raises `DataError` naming the source and the fix.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from medgen_jax.errors import DataError

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class ImageSplit:
  """One split of an image dataset.

  Attributes:
    images: uint8 [n, height, width, channels], 0..255.
    labels: int32 [n], class indices in [0, num_classes).
  """

  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return int(self.images.shape[0])


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """A validated image dataset held in memory.

  Attributes:
    name: registry name, e.g. "pneumoniamnist".
    splits: split name ("train", "val", "test") -> ImageSplit.
    num_classes: number of classes of `labels`.
    class_names: human-readable class names, len == num_classes.
    source: where the data came from (a path, "generated", "tfds:NAME").
  """

  name: str
  splits: dict[str, ImageSplit]
  num_classes: int
  class_names: tuple[str, ...]
  source: str

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """[height, width, channels] shared by every split."""
    return tuple(next(iter(self.splits.values())).images.shape[1:])

  def split(self, name: str) -> ImageSplit:
    if name not in self.splits:
      raise DataError(
          f"{self.source}: dataset {self.name!r} has no split {name!r}; "
          f"it has {sorted(self.splits)}")
    return self.splits[name]


def to_uint8_images(images: np.ndarray, *, source: str, key: str) -> np.ndarray:
  """Validates raw images and returns uint8 [n, h, w, c].

  Accepts [n, h, w] (grayscale) or [n, h, w, c] with c in {1, 3}; uint8, or
  float arrays already in [0, 1] or [0, 255] (anything else is rejected, since
  a silent rescale would hide a unit error in the file).

  Args:
    images: the array read from the file.
    source: file or dataset name, for error messages.
    key: the array's key in the file, for error messages.

  Returns:
    uint8 [n, h, w, c] array.
  """
  images = np.asarray(images)
  where = f"{source}: '{key}'"
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise DataError(
        f"{where} has shape {images.shape}; expected images of shape "
        "[n, height, width] or [n, height, width, channels]")
  n, h, w, c = images.shape
  if n == 0:
    raise DataError(f"{where} is empty (0 images); every split needs images")
  if c not in (1, 3):
    raise DataError(
        f"{where} has {c} channels (shape {images.shape}); expected 1 "
        "(grayscale) or 3 (RGB) in the last axis (NHWC layout)")
  if h < 4 or w < 4:
    raise DataError(f"{where} images are {h}x{w}; expected at least 4x4")
  if images.dtype == np.uint8:
    return images
  if images.dtype == np.bool_ or not (
      np.issubdtype(images.dtype, np.floating)
      or np.issubdtype(images.dtype, np.integer)):
    raise DataError(
        f"{where} has dtype {images.dtype}; expected uint8 (0..255) or float")
  if np.issubdtype(images.dtype, np.floating):
    finite = np.isfinite(images)
    if not finite.all():
      bad = int(np.argmin(finite.reshape(n, -1).all(axis=1)))
      raise DataError(
          f"{where} contains NaN or infinite values (first in image {bad}); "
          "clean or drop those images")
  lo, hi = float(images.min()), float(images.max())
  if lo >= 0.0 and hi <= 1.0 and np.issubdtype(images.dtype, np.floating):
    return np.round(images * 255.0).astype(np.uint8)
  if lo >= 0.0 and hi <= 255.0:
    return np.round(images).astype(np.uint8)
  raise DataError(
      f"{where} values span [{lo:g}, {hi:g}]; expected 0..255 (uint8) or "
      "floats in [0, 1]")


def to_int_labels(labels: np.ndarray, n: int, *, source: str, key: str,
                  num_classes: int | None = None) -> np.ndarray:
  """Validates single-label class indices and returns int32 [n].

  Accepts [n] or [n, 1] integer (or integer-valued) arrays.
  """
  labels = np.asarray(labels)
  where = f"{source}: '{key}'"
  if labels.ndim == 2 and labels.shape[1] == 1:
    labels = labels[:, 0]
  if labels.ndim != 1:
    raise DataError(
        f"{where} has shape {labels.shape}; expected one class index per "
        "image, shape [n] or [n, 1] (multi-label targets are not supported)")
  if labels.shape[0] != n:
    raise DataError(
        f"{where} has {labels.shape[0]} labels but there are {n} images; "
        "images and labels must pair one to one")
  if not (np.issubdtype(labels.dtype, np.integer)
          or np.issubdtype(labels.dtype, np.floating)
          or labels.dtype == np.bool_):
    raise DataError(f"{where} has dtype {labels.dtype}; expected integers")
  if np.issubdtype(labels.dtype, np.floating):
    if not np.isfinite(labels).all() or not np.all(labels == np.round(labels)):
      raise DataError(
          f"{where} holds non-integer or NaN values; expected class indices")
  labels = labels.astype(np.int64)
  if labels.size and labels.min() < 0:
    raise DataError(f"{where} has negative class index {labels.min()}")
  if num_classes is not None and labels.size and labels.max() >= num_classes:
    raise DataError(
        f"{where} has class index {labels.max()} but the dataset has "
        f"{num_classes} classes (0..{num_classes - 1})")
  return labels.astype(np.int32)


def check_dataset(ds: ImageDataset) -> ImageDataset:
  """Cross-split checks: same image shape everywhere, a non-empty train split."""
  if "train" not in ds.splits:
    raise DataError(f"{ds.source}: dataset {ds.name!r} has no 'train' split")
  shapes = {k: s.images.shape[1:] for k, s in ds.splits.items()}
  if len(set(shapes.values())) != 1:
    raise DataError(
        f"{ds.source}: splits have different image shapes {shapes}; "
        "every split must share [height, width, channels]")
  for k, s in ds.splits.items():
    if len(s) == 0:
      raise DataError(f"{ds.source}: split {k!r} is empty")
    if s.images.dtype != np.uint8 or s.labels.dtype != np.int32:
      raise TypeError(f"split {k!r} must hold uint8 images and int32 labels")
    if s.labels.shape != (len(s),):
      raise DataError(
          f"{ds.source}: split {k!r} has {len(s.labels)} labels for "
          f"{len(s)} images")
    if len(s) and (s.labels.min() < 0 or s.labels.max() >= ds.num_classes):
      raise DataError(
          f"{ds.source}: split {k!r} has labels outside 0..{ds.num_classes - 1}")
  if len(ds.class_names) != ds.num_classes:
    raise ValueError("class_names must have num_classes entries")
  return ds
