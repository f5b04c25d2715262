"""The dataset schema (Split, Dataset) and its validation by meaning."""

import numpy as np
import pytest

from medgen_jax.data.base import (KEY_CHECKS, MODALITIES, Dataset, Split,
                                  check_dataset, image_dataset)
from medgen_jax.errors import DataError

SOURCE = "test.npz"


def _survival(n):
  """A survival-style table: float features, times, events, weights."""
  rng = np.random.default_rng(n)
  return {"x": rng.normal(size=(n, 5)).astype(np.float32),
          "time": rng.exponential(size=n).astype(np.float32),
          "event": (np.arange(n) % 2).astype(np.int32),
          "weight": np.ones(n, np.float32)}


def _table(modality="table", metadata=None, **splits):
  """A Dataset with splits of the given arrays (default: train 8, val 4)."""
  splits = splits or {"train": _survival(8), "val": _survival(4)}
  return Dataset(name="toy", source=SOURCE, modality=modality,
                 metadata=metadata or {},
                 splits={k: Split(v) for k, v in splits.items()})


def _images(n=6, size=8, channels=1, num_classes=3):
  rng = np.random.default_rng(0)
  return (rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8),
          (np.arange(n) % num_classes).astype(np.int32))


def _with(key, value, split):
  """A table (train 8, val 4) whose `split` has `key` replaced by `value`."""
  arrays = {"train": _survival(8), "val": _survival(4)}
  arrays[split][key] = value
  return _table(**arrays)


# --- Split and Dataset -------------------------------------------------------


def test_split_holds_any_keys_and_takes_rows():
  arrays = _survival(8)
  s = Split(arrays)
  assert len(s) == 8 and s.keys() == ("x", "time", "event", "weight")
  assert "time" in s and "label" not in s
  np.testing.assert_array_equal(s["x"], arrays["x"])
  batch = s.take(np.array([3, 0, 3]))
  assert set(batch) == set(arrays)
  np.testing.assert_array_equal(batch["time"], arrays["time"][[3, 0, 3]])
  assert batch["x"].shape == (3, 5)


def test_split_missing_key_names_the_keys_present():
  with pytest.raises(DataError, match=r"no key 'label'.*'x', 'time'"):
    Split(_survival(3))["label"]


def test_split_mismatched_leading_lengths_is_a_value_error():
  with pytest.raises(ValueError, match="leading"):
    Split({"x": np.zeros((4, 2)), "time": np.zeros(5)})
  with pytest.raises(ValueError, match="at least one"):
    Split({})
  with pytest.raises(ValueError, match="scalar"):
    Split({"x": np.float32(1.0)})


def test_dataset_accessors():
  ds = _table(metadata={"num_classes": 2, "class_names": ["a", "b"]})
  assert ds.keys == ("x", "time", "event", "weight")
  assert ds.example_shape("x") == (5,) and ds.example_shape("time") == ()
  assert ds.num_classes == 2 and ds.class_names == ("a", "b")
  assert _table().num_classes == 0 and _table().class_names == ()
  with pytest.raises(DataError, match=r"no split 'test'.*\['train', 'val'\]"):
    ds.split("test")
  with pytest.raises(DataError, match=f"{SOURCE}.*no key 'image'"):
    ds.example_shape("image")


def test_image_dataset_metadata():
  ds = image_dataset("toy", {"train": _images(), "val": _images(4)},
                     class_names=("a", "b", "c"), source=SOURCE)
  assert ds.modality == "image" and ds.keys == ("image", "label")
  assert ds.metadata == {"num_classes": 3, "class_names": ("a", "b", "c"),
                         "image_shape": (8, 8, 1)}
  assert check_dataset(ds) is ds


# --- check_dataset: generic --------------------------------------------------


def test_non_image_dataset_of_arbitrary_keys_passes():
  ds = _table()
  assert check_dataset(ds) is ds
  # Sequence-style keys (a bool mask, library sizes) pass too.
  seq = {"x": np.zeros((3, 4), np.float32),
         "mask": np.ones((3, 7), bool), "library_size": np.full(3, 2.0)}
  check_dataset(_table(train=seq))


def test_no_train_split():
  with pytest.raises(DataError, match=r"no 'train' split.*\['val'\]"):
    check_dataset(_table(val=_survival(4)))


def test_empty_split():
  with pytest.raises(DataError, match="split 'val' is empty"):
    check_dataset(_table(train=_survival(4), val=_survival(0)))
  with pytest.raises(DataError, match="empty 'train' split"):
    check_dataset(_table(train=_survival(0)))


def test_split_missing_a_key_present_in_train():
  val = _survival(4)
  del val["event"]
  with pytest.raises(DataError,
                     match=f"{SOURCE}: split 'val' lacks key.*'event'"):
    check_dataset(_table(train=_survival(8), val=val))
  val = _survival(4)
  val["extra"] = np.zeros(4)
  with pytest.raises(DataError, match="split 'val' has key.*'extra'.*lacks"):
    check_dataset(_table(train=_survival(8), val=val))


def test_different_trailing_shapes_across_splits():
  with pytest.raises(DataError, match=r"split 'val', key 'x' has examples of "
                     r"shape \(6,\) but split 'train' has \(5,\)"):
    check_dataset(_with("x", np.zeros((4, 6), np.float32), split="val"))


def test_different_dtype_kind_across_splits():
  with pytest.raises(DataError, match="split 'val', key 'event' has dtype "
                     "float32 but split 'train' has int32"):
    check_dataset(_with("event", np.zeros(4, np.float32), split="val"))
  # int32 and uint8 are the same kind (integer): fine.
  check_dataset(_with("event", np.zeros(4, np.uint8), split="val"))


def test_non_numeric_array():
  with pytest.raises(DataError, match="key 'name' has dtype <U1; expected a "
                     "bool, integer or float"):
    check_dataset(_table(train=dict(_survival(2), name=np.array(["a", "b"]))))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_in_a_float_key(bad):
  x = np.zeros((4, 5), np.float32)
  x[2, 3] = bad
  with pytest.raises(DataError, match=f"{SOURCE}: split 'val', key 'x' holds "
                     "NaN or infinite values \\(first in example 2\\)"):
    check_dataset(_with("x", x, split="val"))


def test_unknown_modality():
  with pytest.raises(DataError, match="modality 'hologram'") as info:
    check_dataset(_table(modality="hologram"))
  # Other modules (e.g. expression) may register more modalities.
  known = str(info.value).split("known modalities: ")[1].split(" (")[0]
  assert {"image", "table"} <= set(known.split(", "))


# --- KEY_CHECKS --------------------------------------------------------------


@pytest.mark.parametrize("key, value, match", [
    ("time", np.array([1.0, -0.5, 2.0, 3.0]), r"'time' has value -0.5 in "
     r"example 1; expected times >= 0"),
    ("time", np.array([True, False, True, True]), "'time' has dtype bool"),
    ("event", np.array([0, 1, 2, 1]), "'event' has value 2 in example 2; "
     r"expected 0 \(censored\) or 1"),
    ("event", np.array([0.0, 0.5, 1.0, 1.0]), "'event' has value 0.5"),
    ("weight", np.array([1.0, 1.0, 1.0, -1.0]), "'weight' has value -1.0 in "
     "example 3; expected weights >= 0"),
    ("library_size", np.array([3.0, 0.0, 1.0, 1.0]), "'library_size' has "
     "value 0.0 in example 1; expected library sizes > 0"),
    ("mask", np.ones((4, 3), np.int32), "'mask' has dtype int32.*expected a "
     "bool mask"),
    ("mask", np.ones(4, bool), r"'mask'.*shape \(4,\).*\[n, time, ...\]"),
    ("label", np.array([0, 1, -1, 0]), "'label' has value -1 in example 2; "
     "expected non-negative class indices"),
    ("label", np.array([0.0, 1.0, 1.0, 0.0]), "'label' has dtype float64"),
    ("label", np.zeros((4, 1), np.int32), r"'label'.*shape \(4, 1\)"),
    ("image", np.zeros((4, 8, 8, 1), np.float32), "'image' has dtype float32; "
     "expected uint8"),
    ("image", np.zeros((4, 8, 8, 2), np.uint8), "'image' has shape"),
    ("image", np.zeros((4, 3, 8, 1), np.uint8),
     "'image' has shape.*at least 4 pixels a side"),
    ("image", np.zeros((4, 3, 8, 8, 1), np.uint8),
     "'image' has shape.*at least 4 pixels a side"),
    ("image", np.zeros((4, 8, 8, 8, 8, 1), np.uint8), "'image' has shape"),
])
def test_key_checks_name_split_and_key(key, value, match):
  train = {"x": np.zeros((4, 5), np.float32), key: value}
  with pytest.raises(DataError, match=f"{SOURCE}: split 'train', key {match}"):
    check_dataset(_table(train=train))


def test_label_range_uses_num_classes():
  meta = {"num_classes": 2}
  train = dict(_survival(4), label=np.array([0, 1, 1, 0]))
  val = dict(_survival(4), label=np.array([0, 1, 2, 0]))
  check_dataset(_table(train=train))
  with pytest.raises(DataError, match="split 'val', key 'label' has value 2 in "
                     r"example 2; expected class indices in 0..1 "
                     r"\(2 classes\)"):
    check_dataset(_table(metadata=meta, train=train, val=val))


def test_bool_event_and_integer_time_are_fine():
  check_dataset(_table(train=dict(_survival(4),
                                  event=np.array([True, False] * 2),
                                  time=np.arange(4))))


def test_families_register_their_own_key_checks(monkeypatch):
  def positive_counts(x, where, ds):
    if (x < 0).any():
      raise DataError(f"{where} has negative counts")

  # A copy of the registry's entries, so the registration is undone after.
  monkeypatch.setattr(KEY_CHECKS, "_entries", dict(KEY_CHECKS._entries))
  KEY_CHECKS.register("counts", positive_counts)
  good = dict(_survival(4), counts=np.ones((4, 3), np.int32))
  check_dataset(_table(train=good))
  bad = dict(_survival(4), counts=-np.ones((4, 3), np.int32))
  with pytest.raises(DataError, match="split 'train', key 'counts' has "
                     "negative counts"):
    check_dataset(_table(train=bad))


# --- MODALITIES --------------------------------------------------------------


def test_table_needs_float_features_x():
  no_x = _survival(4)
  del no_x["x"]
  with pytest.raises(DataError, match="table dataset 'toy' has no key 'x'"):
    check_dataset(_table(train=no_x))
  with pytest.raises(DataError, match=r"key 'x' has dtype int64 and shape "
                     r"\(4, 5\); expected float features"):
    check_dataset(_table(train=dict(_survival(4),
                                    x=np.zeros((4, 5), np.int64))))
  with pytest.raises(DataError, match="expected float features"):
    check_dataset(_table(train=dict(_survival(4),
                                    x=np.zeros((4, 5, 2), np.float32))))


def _image_ds(metadata=None, **splits):
  splits = splits or {"train": _images(), "val": _images(4)}
  ds = image_dataset("toy", splits, class_names=("a", "b", "c"), source=SOURCE)
  if metadata is not None:
    ds = Dataset(name=ds.name, splits=ds.splits, source=ds.source,
                 modality="image", metadata=metadata)
  return ds


def test_image_modality_rules():
  with pytest.raises(DataError, match=r"lacks key\(s\) \['label'\]"):
    check_dataset(Dataset(name="toy", source=SOURCE, modality="image",
                          splits={"train": Split({"image": _images()[0]})},
                          metadata={"num_classes": 1, "class_names": ["a"]}))
  with pytest.raises(DataError, match="num_classes None; expected a positive"):
    check_dataset(_image_ds(metadata={}))
  with pytest.raises(DataError, match="2 class names for 3 classes"):
    check_dataset(_image_ds(metadata={"num_classes": 3,
                                      "class_names": ("a", "b")}))
  with pytest.raises(DataError, match="has value 3 in example 3; expected "
                     r"class indices in 0..2"):
    check_dataset(_image_ds(train=_images(num_classes=4)))
  with pytest.raises(DataError, match=r"metadata image_shape \(9, 9, 1\)"):
    check_dataset(_image_ds(metadata={"num_classes": 3,
                                      "class_names": ("a", "b", "c"),
                                      "image_shape": (9, 9, 1)}))


def test_image_splits_with_different_shapes():
  with pytest.raises(DataError, match=r"split 'val', key 'image' has examples "
                     r"of shape \(16, 16, 1\) but split 'train' has "
                     r"\(8, 8, 1\)"):
    check_dataset(_image_ds(train=_images(), val=_images(size=16)))
  # The modality check says it too when called on its own.
  ds = _image_ds(train=_images(), val=_images(size=16))
  with pytest.raises(DataError, match="different image shapes"):
    MODALITIES.get("image")(ds)
