"""The dataset registry: `--data NAME` -> a loader returning an ImageDataset.

A loader is `fn(data_config) -> ImageDataset`, where `data_config` is the
`data` section of an experiment config (see `medgen_jax/configs/gan.py`):
`name`, `data_dir`, `image_size`, `download`, `seed` and per-dataset options.
A loader must return images at `image_size` x `image_size` or raise a
`DataError` that says which sizes it has.

Names with a `tfds:` prefix (`tfds:malaria`) go to the TensorFlow Datasets
loader, which needs the optional `tfds` extra.
"""

from __future__ import annotations

from typing import Callable

from medgen_jax.data.base import ImageDataset, check_dataset
from medgen_jax.errors import DataError
from medgen_jax.registry import Registry

Loader = Callable[..., ImageDataset]

DATASETS: Registry[Loader] = Registry("dataset", hint="--data")

TFDS_PREFIX = "tfds:"


def _ensure_builtin_loaders() -> None:
  # Importing the modules runs their @DATASETS.register decorators.
  from medgen_jax.data import medmnist, phantoms  # noqa: F401


def dataset_names() -> list[str]:
  _ensure_builtin_loaders()
  return DATASETS.names() + [TFDS_PREFIX + "NAME"]


def load_dataset(data_config) -> ImageDataset:
  """Loads and validates the dataset named by `data_config.name`."""
  _ensure_builtin_loaders()
  name = data_config.name
  if name.startswith(TFDS_PREFIX):
    from medgen_jax.data import tfds as tfds_loader
    ds = tfds_loader.load(data_config)
  else:
    ds = DATASETS.get(name)(data_config)
  ds = check_dataset(ds)
  h, w, _ = ds.image_shape
  if (h, w) != (data_config.image_size, data_config.image_size):
    raise DataError(
        f"{ds.source}: images are {h}x{w} but --image-size is "
        f"{data_config.image_size}; pass --image-size {h} or use a file of "
        "the requested size")
  return ds
