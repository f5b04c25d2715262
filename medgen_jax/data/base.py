"""The in-memory dataset schema and its validation by meaning.

Every loader returns a `Dataset`: named splits ("train", "val", "test") of
numpy arrays that share a leading example axis, under any keys (an image
family's "image" and "label", a table's "x", a survival table's "time" and
"event", a sequence family's "mask" ...), plus metadata such as class names.

`check_dataset` validates what the arrays mean, not the quirks of one file:

  1. generic: a non-empty 'train' split, no empty split, the same keys in
     every split, per key the same trailing shape and kind of dtype in every
     split, numeric (bool, integer, float) arrays only, every float finite;
  2. per key (`KEY_CHECKS`): e.g. "label" holds class indices in
     [0, num_classes), "event" holds 0/1, "time" is >= 0;
  3. per modality (`MODALITIES`): e.g. an "image" dataset has the keys
     "image" and "label" and consistent class metadata.

Families add checks for their own keys and modalities with
`KEY_CHECKS.register(name, fn)` and `MODALITIES.register(name, fn)`. Every
failure is a `DataError` naming the source, the split and key, what was
expected and how to fix it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from medgen_jax.errors import DataError
from medgen_jax.registry import Registry

SPLITS = ("train", "val", "test")

# dtype.kind -> the kind every split must share for one key.
_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "float"}


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """Named arrays sharing a leading example axis.

  Attributes:
    arrays: key -> array [n, ...], the same n for every key.
  """

  arrays: Mapping[str, np.ndarray]

  def __post_init__(self):
    arrays = {str(k): np.asarray(v) for k, v in dict(self.arrays).items()}
    if not arrays:
      raise ValueError("a Split needs at least one array")
    lengths = {}
    for key, value in arrays.items():
      if value.ndim == 0:
        raise ValueError(f"array {key!r} is a scalar; a Split holds arrays "
                         "with a leading example axis [n, ...]")
      lengths[key] = value.shape[0]
    if len(set(lengths.values())) != 1:
      raise ValueError(f"the arrays of a Split must share their leading "
                       f"(example) length; got {lengths}")
    object.__setattr__(self, "arrays", arrays)

  def __len__(self) -> int:
    return int(next(iter(self.arrays.values())).shape[0])

  def __getitem__(self, key: str) -> np.ndarray:
    try:
      return self.arrays[key]
    except KeyError:
      raise DataError(f"the split has no key {key!r}; it has keys "
                      f"{list(self.keys())}") from None

  def __contains__(self, key: object) -> bool:
    return key in self.arrays

  def keys(self) -> tuple[str, ...]:
    return tuple(self.arrays)

  def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """{key: array[indices]} for every key; indices int [batch]."""
    return {k: v[indices] for k, v in self.arrays.items()}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A dataset held in memory (validate it with `check_dataset`).

  Attributes:
    name: registry name, e.g. "pneumoniamnist".
    splits: split name ("train", "val", "test") -> Split.
    source: where the data came from (a path, "generated ...", "tfds:NAME").
    modality: what the arrays are ("image", "table", ...), a MODALITIES name.
    metadata: e.g. num_classes, class_names, image_shape.
  """

  name: str
  splits: Mapping[str, Split]
  source: str
  modality: str = "table"
  metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    splits = dict(self.splits)
    for k, s in splits.items():
      if not isinstance(s, Split):
        raise TypeError(f"split {k!r} is a {type(s).__name__}, not a Split")
    object.__setattr__(self, "splits", splits)
    object.__setattr__(self, "metadata", dict(self.metadata))

  def split(self, name: str) -> Split:
    if name not in self.splits:
      raise DataError(
          f"{self.source}: dataset {self.name!r} has no split {name!r}; "
          f"it has {sorted(self.splits)}")
    return self.splits[name]

  @property
  def keys(self) -> tuple[str, ...]:
    """The keys of the train split."""
    return self.split("train").keys()

  def example_shape(self, key: str) -> tuple[int, ...]:
    """The shape of one example of `key` (the train split's trailing shape)."""
    train = self.split("train")
    if key not in train:
      raise DataError(
          f"{self.source}: dataset {self.name!r} has no key {key!r}; it has "
          f"keys {list(train.keys())}")
    return tuple(int(d) for d in train[key].shape[1:])

  @property
  def num_classes(self) -> int:
    return int(self.metadata.get("num_classes", 0))

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self.metadata.get("class_names", ()))


def image_dataset(name: str,
                  splits: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                  class_names: Sequence[str], source: str) -> Dataset:
  """An "image" Dataset from (images, labels) pairs per split.

  Args:
    name: registry name.
    splits: split name -> (uint8 images [n, h, w, c], int32 labels [n]).
    class_names: label index -> name.
    source: where the data came from.

  Returns:
    A Dataset of modality "image" with keys "image" and "label" and metadata
    num_classes, class_names and image_shape (h, w, c).
  """
  built = {k: Split({"image": x, "label": y}) for k, (x, y) in splits.items()}
  first = built.get("train", next(iter(built.values()), None))
  shape = () if first is None else tuple(
      int(d) for d in first["image"].shape[1:])  # (h, w, c)
  metadata = {"num_classes": len(class_names),
              "class_names": tuple(str(c) for c in class_names),
              "image_shape": shape}
  return Dataset(name=name, splits=built, source=source, modality="image",
                 metadata=metadata)


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


# ---------------------------------------------------------------------------
# Checks by meaning: per key, per modality, and the generic ones.
# ---------------------------------------------------------------------------

KeyCheck = Callable[[np.ndarray, str, Dataset], None]
ModalityCheck = Callable[[Dataset], None]

KEY_CHECKS: Registry[KeyCheck] = Registry("data key check")
MODALITIES: Registry[ModalityCheck] = Registry("data modality")

_FIX = "fix the data file or the loader that builds the dataset"


def _first_bad(bad: np.ndarray) -> int:
  """Index of the first example with a True in `bad` [n, ...]."""
  return int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))


def _numeric(x: np.ndarray, where: str, expected: str) -> None:
  if x.dtype.kind not in "iuf":
    raise DataError(f"{where} has dtype {x.dtype}; expected {expected}; "
                    f"{_FIX}")


def _finite(x: np.ndarray, where: str) -> None:
  if x.dtype.kind == "f" and not np.isfinite(x).all():
    i = _first_bad(~np.isfinite(x))
    raise DataError(f"{where} holds NaN or infinite values (first in example "
                    f"{i}); clean or drop those examples")


def _bounded(x: np.ndarray, bad: np.ndarray, where: str,
             expected: str) -> None:
  """Raises naming the first example where `bad` holds."""
  if bad.any():
    i = _first_bad(bad)
    value = (x[i][bad[i]].flat[0] if x.ndim > 1 else x[i]).item()
    raise DataError(f"{where} has value {value!r} in example {i}; expected "
                    f"{expected}; {_FIX}")


@KEY_CHECKS.register("image")
def _check_image(x: np.ndarray, where: str, ds: Dataset) -> None:
  """uint8 [n, h, w, c] (2-D) or [n, x, y, z, c] (3-D volumes), c in {1, 3},
  every spatial side >= 4."""
  del ds
  if x.dtype != np.uint8:
    raise DataError(f"{where} has dtype {x.dtype}; expected uint8 images "
                    "(0..255); convert them with to_uint8_images")
  if x.ndim not in (4, 5) or x.shape[-1] not in (1, 3) or min(
      x.shape[1:-1]) < 4:
    raise DataError(
        f"{where} has shape {x.shape}; expected [n, height, width, channels] "
        "(or [n, x, y, z, channels] volumes) with 1 (grayscale) or 3 (RGB) "
        "channels and at least 4 pixels a side")


@KEY_CHECKS.register("label")
def _check_label(x: np.ndarray, where: str, ds: Dataset) -> None:
  """Integer class indices [n] in [0, num_classes) when num_classes is known."""
  if x.dtype.kind not in "iu" or x.ndim != 1:
    raise DataError(f"{where} has dtype {x.dtype} and shape {x.shape}; "
                    "expected integer class indices of shape [n]; " + _FIX)
  if "num_classes" in ds.metadata:
    k = ds.num_classes
    expected = f"class indices in 0..{k - 1} ({k} classes)"
  else:
    k, expected = None, "non-negative class indices"
  bad = (x < 0) if k is None else (x < 0) | (x >= k)
  _bounded(x, bad, where, expected)


@KEY_CHECKS.register("mask")
def _check_mask(x: np.ndarray, where: str, ds: Dataset) -> None:
  """bool [n, time, ...] (0/1 integers are refused: a mask is not a weight)."""
  del ds
  if x.dtype != np.bool_ or x.ndim < 2:
    raise DataError(
        f"{where} has dtype {x.dtype} and shape {x.shape}; expected a bool "
        "mask [n, time, ...] (True = a real step); build it with "
        "`mask.astype(bool)` in the loader")


@KEY_CHECKS.register("time")
def _check_time(x: np.ndarray, where: str, ds: Dataset) -> None:
  """Finite times >= 0 (survival or event times)."""
  del ds
  _numeric(x, where, "numeric times")
  _finite(x, where)
  _bounded(x, x < 0, where, "times >= 0")


@KEY_CHECKS.register("event")
def _check_event(x: np.ndarray, where: str, ds: Dataset) -> None:
  """Event indicators in {0, 1} (1 = observed, 0 = censored)."""
  del ds
  if x.dtype == np.bool_:
    return
  _numeric(x, where, "event indicators (bool or 0/1)")
  _bounded(x, (x != 0) & (x != 1), where,
           "0 (censored) or 1 (event observed)")


@KEY_CHECKS.register("library_size")
def _check_library_size(x: np.ndarray, where: str, ds: Dataset) -> None:
  """Finite library sizes > 0 (total counts per cell or sample)."""
  del ds
  _numeric(x, where, "numeric library sizes")
  _finite(x, where)
  _bounded(x, ~(x > 0), where, "library sizes > 0 (drop empty samples)")


@KEY_CHECKS.register("weight")
def _check_weight(x: np.ndarray, where: str, ds: Dataset) -> None:
  """Finite example weights >= 0."""
  del ds
  _numeric(x, where, "numeric weights")
  _finite(x, where)
  _bounded(x, x < 0, where, "weights >= 0")


@MODALITIES.register("image")
def _image_modality(ds: Dataset) -> None:
  """Keys image + label, class metadata, one image shape in every split."""
  missing = [k for k in ("image", "label") if k not in ds.split("train")]
  if missing:
    raise DataError(
        f"{ds.source}: image dataset {ds.name!r} lacks key(s) {missing} "
        f"(it has {list(ds.keys)}); an image dataset holds 'image' and "
        "'label'; build it with image_dataset()")
  k, names = ds.metadata.get("num_classes"), ds.class_names
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise DataError(
        f"{ds.source}: image dataset {ds.name!r} has metadata num_classes "
        f"{k!r}; expected a positive integer; build it with image_dataset()")
  if len(names) != k:
    raise DataError(
        f"{ds.source}: image dataset {ds.name!r} has {len(names)} class "
        f"names for {k} classes; give one name per class")
  shapes = {s: tuple(sp["image"].shape[1:]) for s, sp in ds.splits.items()}
  if len(set(shapes.values())) != 1:
    raise DataError(
        f"{ds.source}: splits have different image shapes {shapes}; every "
        "split must share [height, width, channels]")
  declared = ds.metadata.get("image_shape")
  if declared is not None and tuple(declared) != ds.example_shape("image"):
    raise DataError(
        f"{ds.source}: metadata image_shape {tuple(declared)} differs from "
        f"the images' {ds.example_shape('image')}; build it with "
        "image_dataset()")


@MODALITIES.register("table")
def _table_modality(ds: Dataset) -> None:
  """Key "x": float features [n, features]."""
  train = ds.split("train")
  if "x" not in train:
    raise DataError(
        f"{ds.source}: table dataset {ds.name!r} has no key 'x' (it has "
        f"{list(train.keys())}); a table holds float features under 'x'")
  x = train["x"]
  if x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] < 1:
    raise DataError(
        f"{ds.source}: split 'train', key 'x' has dtype {x.dtype} and shape "
        f"{x.shape}; expected float features [n, features]; {_FIX}")


def _check_split_schema(ds: Dataset) -> None:
  """Same keys, trailing shapes and dtype kinds in every split as in train."""
  train = ds.splits["train"]
  for name, split in ds.splits.items():
    if len(split) == 0:
      raise DataError(f"{ds.source}: split {name!r} is empty (0 examples); "
                      "give it examples or leave the split out")
    lacks = [k for k in train.keys() if k not in split]
    extra = [k for k in split.keys() if k not in train]
    if lacks or extra:
      what = (f"lacks key(s) {lacks}" if lacks else
              f"has key(s) {extra} that split 'train' lacks")
      raise DataError(f"{ds.source}: split {name!r} {what} (train has "
                      f"{list(train.keys())}); every split must hold the "
                      "same keys")
    for key in split.keys():
      x, ref = split[key], train[key]
      where = f"{ds.source}: split {name!r}, key {key!r}"
      if x.dtype.kind not in _KINDS:
        raise DataError(f"{where} has dtype {x.dtype}; expected a bool, "
                        f"integer or float array; {_FIX}")
      if x.shape[1:] != ref.shape[1:]:
        raise DataError(
            f"{where} has examples of shape {x.shape[1:]} but split 'train' "
            f"has {ref.shape[1:]}; every split must share the shape of one "
            "example")
      if _KINDS[x.dtype.kind] != _KINDS.get(ref.dtype.kind):
        raise DataError(
            f"{where} has dtype {x.dtype} but split 'train' has {ref.dtype}; "
            "every split must share the kind of dtype (bool, integer, float)")


def check_dataset(ds: Dataset) -> Dataset:
  """Validates `ds` by meaning; returns it unchanged or raises DataError."""
  if "train" not in ds.splits or len(ds.splits["train"]) == 0:
    have = "an empty 'train' split" if "train" in ds.splits else (
        f"no 'train' split (it has {sorted(ds.splits)})")
    raise DataError(f"{ds.source}: dataset {ds.name!r} has {have}; training "
                    "needs examples in a split named 'train'")
  _check_split_schema(ds)
  for name, split in ds.splits.items():
    for key in split.keys():
      where = f"{ds.source}: split {name!r}, key {key!r}"
      _finite(split[key], where)
      if key in KEY_CHECKS:
        KEY_CHECKS.get(key)(split[key], where, ds)
  if ds.modality not in MODALITIES:
    raise DataError(
        f"{ds.source}: dataset {ds.name!r} has modality {ds.modality!r}, "
        f"which has no registered check; known modalities: "
        f"{', '.join(MODALITIES.names())} (a family registers its own with "
        "MODALITIES.register)")
  MODALITIES.get(ds.modality)(ds)
  return ds
