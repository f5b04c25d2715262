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

Names with a `tfds:` prefix (`tfds:malaria`) go to the TensorFlow Datasets
loader, which needs the optional `tfds` extra.

A name that is not registered but is a file path (`--data cells.h5ad`) goes
to the reader of its suffix in `FILE_FORMATS`: `fn(path, data_config) ->
Dataset`. A name is taken as a path when the file exists, when it ends in a
known suffix, or when it has a folder or a suffix (so `scan.nii` is told its
suffix is unknown, not that no dataset has that name).
"""

from __future__ import annotations

import numbers
import os
import pathlib
from typing import Any, Callable

from medgen_jax.data.base import Dataset, check_dataset
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.registry import Registry

Loader = Callable[..., Dataset]
FileReader = Callable[[pathlib.Path, Any], Dataset]

DATASETS: Registry[Loader] = Registry("dataset", hint="--data")
# File suffix (lower case, with its dot: ".h5ad", ".csv") -> reader.
FILE_FORMATS: Registry[FileReader] = Registry("file format", hint="--data PATH")

TFDS_PREFIX = "tfds:"
MEMORY_FRACTION = 0.5  # of physical memory that one dataset may take


def _ensure_builtin_loaders() -> None:
  # Importing the modules runs their @DATASETS.register and
  # @FILE_FORMATS.register decorators.
  from medgen_jax.data import (csv_table, expression_datasets,  # noqa: F401
                              h5ad, medmnist, phantoms)


def dataset_names() -> list[str]:
  _ensure_builtin_loaders()
  return (DATASETS.names() + [TFDS_PREFIX + "NAME"]
          + ["PATH" + suffix for suffix in FILE_FORMATS.names()])


def file_format(name: str) -> str | None:
  """The longest FILE_FORMATS suffix that `name` ends in (any case), or None."""
  lower = name.lower()
  known = [s for s in FILE_FORMATS.names() if lower.endswith(s)]
  return max(known, key=len) if known else None


def _is_path(name: str) -> bool:
  return (os.path.isfile(name) or file_format(name) is not None
          or "/" in name or os.sep in name
          or bool(pathlib.PurePath(name).suffix))


def _load_file(name: str, data_config) -> Dataset:
  """Reads the file `name` with the reader of its suffix."""
  path = pathlib.Path(name).expanduser()
  suffix = file_format(name)
  known = ", ".join(FILE_FORMATS.names())
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
  return FILE_FORMATS.get(suffix)(path, data_config)


def load_dataset(data_config) -> Dataset:
  """Loads the dataset named by `data_config.name` and runs check_dataset.

  The name is a registered dataset, `tfds:NAME`, or a file path whose suffix
  is in FILE_FORMATS.
  """
  _ensure_builtin_loaders()
  name = str(data_config.name)
  if name.startswith(TFDS_PREFIX):
    from medgen_jax.data import tfds as tfds_loader
    ds = tfds_loader.load(data_config)
  elif name not in DATASETS and _is_path(name):
    ds = _load_file(name, data_config)
  else:
    ds = DATASETS.get(name)(data_config)
  if not isinstance(ds, Dataset):
    raise TypeError(f"the loader of dataset {name!r} returned a "
                    f"{type(ds).__name__}, not a medgen_jax Dataset")
  return check_dataset(ds)


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
