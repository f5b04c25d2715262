"""The dataset registry: `--data NAME` -> a loader returning a Dataset.

A loader is `fn(data_config) -> Dataset`, where `data_config` is the `data`
section of an experiment config (see `medgen_jax/configs/base.py`): `name`,
`data_dir`, `download`, `seed`, plus the options of the family that trains
on it (an image family adds `image_size`, `phantoms.*` and `tfds_*`, see
`configs/images.py`). A loader reads a family's option with `option`, which
turns an absent field into a one-line ConfigError, and it refuses input that
would not fit in memory (`memory_limit_bytes`) before allocating it.

`load_dataset` validates what a loader returns with `check_dataset`; whether
the data suit a family's config (e.g. the image size) is the family's check.

Names with a registered prefix go to that prefix's loader in `PREFIXES`:
`fn(rest, data_config) -> Dataset` (`tfds:malaria` -> the TensorFlow
Datasets loader, which needs the optional `tfds` extra; `wfdb:FOLDER` ->
every PhysioNet record of a folder; `dicom:PATH` and `nifti:PATH` -> CT/MR
volumes as slices or 3-D images, see `volume_datasets.py`).

A name that is not registered but is a file path (`--data cells.h5ad`) goes
to the reader of its suffix in `FILE_FORMATS`: `fn(path, data_config) ->
Dataset`. A name is taken as a path when the file exists, when it ends in a
known suffix, or when it has a folder or a suffix (so `scan.nii` is told its
suffix is unknown, not that no dataset has that name).

One suffix can mean different data to different families (a `.csv` is an
expression table to the VAE, a multichannel signal to the recurrent
families). A family whose data section sets `data.kind` (e.g. "series")
gets the reader registered as "KIND:SUFFIX" (`series:.csv`) before the
plain one. A path without a suffix whose companion file exists (a WFDB
record `100` beside `100.hea`) is read through the companion's reader.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import pathlib
from typing import Any, Callable

import numpy as np

from medgen_jax.data.base import Dataset, check_dataset
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.registry import Registry

log = logging.getLogger("medgen_jax")

Loader = Callable[..., Dataset]
FileReader = Callable[[pathlib.Path, Any], Dataset]

DATASETS: Registry[Loader] = Registry("dataset", hint="--data")
# File suffix (lower case, with its dot: ".h5ad", ".csv") -> reader.
FILE_FORMATS: Registry[FileReader] = Registry("file format", hint="--data PATH")

# Prefix (without its colon: "tfds") -> loader(rest of the name, data_config).
PREFIXES: Registry[Callable[[str, Any], Dataset]] = Registry(
    "data source prefix", hint="--data PREFIX:NAME")

MEMORY_FRACTION = 0.5  # of physical memory that one dataset may take


def _ensure_builtin_loaders() -> None:
  # Importing the modules runs their @DATASETS.register and
  # @FILE_FORMATS.register decorators.
  from medgen_jax.data import (csv_table, expression_datasets,  # noqa: F401
                              h5ad, medmnist, phantoms, series_sources,
                              sample_files, sleep, survival,
                              survival_series, volume_datasets)


@PREFIXES.register("tfds")
def _tfds(rest: str, data_config) -> Dataset:
  del rest  # the tfds loader reads the whole name from data_config
  from medgen_jax.data import tfds as tfds_loader
  return tfds_loader.load(data_config)


def dataset_names() -> list[str]:
  _ensure_builtin_loaders()
  files = []
  for key in FILE_FORMATS.names():
    kind, _, suffix = key.rpartition(":")
    files.append(f"PATH{suffix}" + (f" ({kind} families)" if kind else ""))
  return (DATASETS.names() + [p + ":NAME" for p in PREFIXES.names()]
          + files)


def _kind(data_config) -> str:
  return str(data_config.get("kind", "") or "") if data_config else ""


def _suffixes(kind: str) -> list[str]:
  """The suffixes readable for a family of data kind `kind`."""
  out = set()
  for key in FILE_FORMATS.names():
    k, _, suffix = key.rpartition(":")
    if not k or k == kind:
      out.add(suffix)
  return sorted(out)


def _reader(suffix: str, kind: str) -> FileReader:
  qualified = f"{kind}:{suffix}"
  return FILE_FORMATS.get(qualified if qualified in FILE_FORMATS else suffix)


def file_format(name: str, kind: str = "") -> str | None:
  """The longest suffix readable for `kind` that `name` ends in (any case)."""
  lower = name.lower()
  known = [s for s in _suffixes(kind) if lower.endswith(s)]
  return max(known, key=len) if known else None


def _companion(path: pathlib.Path, kind: str) -> pathlib.Path | None:
  """`path` + a readable suffix, when `path` itself does not exist but that
  file does (a WFDB record named without its extension)."""
  found = [pathlib.Path(str(path) + s) for s in _suffixes(kind)
           if pathlib.Path(str(path) + s).is_file()]
  return found[0] if len(found) == 1 else None


def _is_path(name: str, kind: str = "") -> bool:
  return (os.path.isfile(name) or file_format(name, kind) is not None
          or "/" in name or os.sep in name
          or bool(pathlib.PurePath(name).suffix))


def _load_file(name: str, data_config) -> Dataset:
  """Reads the file `name` with the reader of its suffix."""
  kind = _kind(data_config)
  path = pathlib.Path(name).expanduser()
  if not path.exists() and (companion := _companion(path, kind)):
    path, name = companion, str(companion)
  suffix = file_format(name, kind)
  known = ", ".join(_suffixes(kind))
  if not path.exists():
    raise DataError(
        f"{path}: no such file; --data takes a dataset name (`medgen "
        f"datasets` lists them) or the path of an existing {known} file")
  if not path.is_file():
    raise DataError(f"{path} is a folder, not a file; --data PATH takes one "
                    f"{known} file (a folder of files goes in --data-dir)")
  if suffix is None:
    raise DataError(
        f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; "
        f"--data PATH reads files ending in {known}")
  return _reader(suffix, kind)(path, data_config)


def load_dataset(data_config) -> Dataset:
  """Loads the dataset named by `data_config.name` and runs check_dataset.

  The name is a registered dataset, `PREFIX:REST` of a registered prefix
  (`tfds:NAME`), or a file path whose suffix is in FILE_FORMATS.
  """
  _ensure_builtin_loaders()
  name = str(data_config.name)
  prefix, colon, rest = name.partition(":")
  if colon and prefix in PREFIXES:
    ds = PREFIXES.get(prefix)(rest, data_config)
  elif name not in DATASETS and _is_path(name, _kind(data_config)):
    ds = _load_file(name, data_config)
  else:
    ds = DATASETS.get(name)(data_config)
  if not isinstance(ds, Dataset):
    raise TypeError(f"the loader of dataset {name!r} returned a "
                    f"{type(ds).__name__}, not a medgen_jax Dataset")
  ds = check_dataset(ds)
  fraction = data_config.get("train_fraction", 1.0)
  if fraction != 1.0:
    ds = train_subset(ds, fraction, int(data_config.get("seed", 0)))
  if data_config.get("add_samples", ""):
    ds = add_samples(ds, str(data_config.add_samples))
  return ds


def add_samples(ds: Dataset, path: str) -> Dataset:
  """`ds` with the examples of a samples .npz appended to its train split.

  The file must hold every array of the train split under the same name
  with the same per-example shape (e.g. "image" uint8 [n, h, w, c] and
  "label" [n] of a conditional GAN's `medgen sample --out FILE.npz`);
  the result is checked like any dataset (class indices in range ...).
  """
  from medgen_jax.data import npz  # noqa: PLC0415
  where = f"--add-samples {path}"
  if not pathlib.Path(path).is_file():
    raise DataError(f"{where}: no such file; expected an .npz written by "
                    "`medgen sample --out FILE.npz`")
  arrays = npz.read_npz(path, what="an .npz of `medgen sample --out FILE.npz`")
  train = ds.split("train")
  missing = [k for k in train.keys() if k not in arrays]
  if missing:
    raise DataError(f"{where}: missing {missing} (found {sorted(arrays)}); "
                    f"the train split of {ds.name!r} has {list(train.keys())} "
                    "(sample a conditional run for labels)")
  merged = {}
  for key in train.keys():
    real, extra = np.asarray(train[key]), np.asarray(arrays[key])
    if extra.shape[1:] != real.shape[1:] or extra.dtype.kind != real.dtype.kind:
      raise DataError(f"{where}: {key!r} is {extra.dtype}{list(extra.shape)}; "
                      f"the train split of {ds.name!r} has "
                      f"{real.dtype}[n, {', '.join(map(str, real.shape[1:]))}]")
    merged[key] = np.concatenate([real, extra.astype(real.dtype)])
  splits = dict(ds.splits)
  splits["train"] = dataclasses.replace(train, arrays=merged)
  log.info("--add-samples: %d generated + %d real training examples",
           len(arrays[train.keys()[0]]), len(train))
  try:
    return check_dataset(dataclasses.replace(ds, splits=splits))
  except DataError as e:
    raise DataError(f"{where}: the generated examples do not fit "
                    f"{ds.name!r}: {e}") from None


def train_subset(ds: Dataset, fraction, seed: int) -> Dataset:
  """`ds` with its train split cut to `fraction` of its examples: the same
  fraction of each class when the split has labels (at least one example
  per class present), seeded; val and test untouched."""
  from medgen_jax.configs.base import check_real  # noqa: PLC0415
  check_real(fraction, "data.train_fraction (--train-fraction)", 0.0, 1.0,
             lo_open=True)
  train = ds.split("train")
  rng = np.random.default_rng(seed)
  n = len(train)
  if "label" in train and np.asarray(train["label"]).ndim == 1:
    labels = np.asarray(train["label"])
    keep = []
    for c in np.unique(labels):
      idx = np.flatnonzero(labels == c)
      k = max(1, int(round(fraction * len(idx))))
      keep.append(rng.choice(idx, k, replace=False))
    keep = np.sort(np.concatenate(keep))
  else:
    keep = np.sort(rng.choice(n, max(1, int(round(fraction * n))),
                              replace=False))
  splits = dict(ds.splits)
  splits["train"] = dataclasses.replace(train, arrays=train.take(keep))
  log.info("data.train_fraction %g: training on %d of %d %s examples",
           fraction, len(keep), n, ds.name)
  return dataclasses.replace(ds, splits=splits)


def option(data_config, field: str, dataset: str,
           kind: str = "an image dataset",
           family: str = "an image family such as `medgen train gan`") -> Any:
  """`data_config[field]`, or a ConfigError when the section lacks it.

  The `data` section comes from the family being trained; a family without
  image fields cannot train on an image dataset, and this says so in one line.

  Args:
    data_config: the `data` section (an ml_collections ConfigDict).
    field: the field, e.g. "image_size".
    dataset: the dataset's name, for the message.
    kind: what the dataset is, for the message.
    family: which families have the field, for the message.
  """
  value = data_config.get(field, None)
  if value is None:
    raise ConfigError(
        f"dataset {dataset!r} is {kind} and needs data.{field}; train it with "
        f"{family}")
  return value


def integer_option(value, flag: str, minimum: int | None = None) -> int:
  """`value` as an int, or a ConfigError naming `flag` (bools are refused)."""
  if (isinstance(value, bool) or not isinstance(value, numbers.Real)
      or not float(value).is_integer()):
    raise ConfigError(f"{flag} must be an integer, got {value!r}")
  if minimum is not None and value < minimum:
    raise ConfigError(f"{flag} must be >= {minimum}, got {value!r}")
  return int(value)


def memory_limit_bytes() -> int | None:
  """Bytes one dataset may take: MEMORY_FRACTION of physical memory.

  None when the platform does not report its memory (no bound then).
  """
  try:
    pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
  except (AttributeError, ValueError, OSError):
    return None
  if pages <= 0 or page <= 0:
    return None
  return int(pages * page * MEMORY_FRACTION)


def format_bytes(num_bytes: float) -> str:
  """A byte count for messages: "3.2 GiB", "12.0 MiB", "512 bytes"."""
  if num_bytes >= 2**30 / 10:
    return f"{num_bytes / 2**30:.1f} GiB"
  if num_bytes >= 2**20 / 10:
    return f"{num_bytes / 2**20:.1f} MiB"
  return f"{int(num_bytes)} bytes"
