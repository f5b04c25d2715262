"""What the image families (gan, vae) share about their data's shape.

Not a family itself (the leading underscore keeps it out of `medgen
families`). Images are 2-D [h, w, c] at `--image-size`, or 3-D volumes
[x, y, z, c] at `--volume N` (CT/MR from `dicom:` / `nifti:`, see
data/volume_datasets.py); the models are built for one or the other from
the same resolution plan.
"""

from __future__ import annotations

from typing import Sequence

from medgen_jax.configs.images import image_ndim_and_size
from medgen_jax.data.base import Dataset
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.models.layers import num_resolution_stages


def check_image_shape(dataset: Dataset, spatial: Sequence[int], ndim: int,
                      size: int) -> None:
  """Refuses images whose spatial shape is not (size,) * ndim.

  Args:
    dataset: the dataset, for messages.
    spatial: one example's spatial shape (without channels).
    ndim: 2 (images) or 3 (volumes), from the config.
    size: the side the config asks for (--image-size or --volume).
  """
  spatial = tuple(int(s) for s in spatial)
  shown = "x".join(str(s) for s in spatial)
  if len(spatial) == 3 and ndim == 2:
    raise ConfigError(
        f"{dataset.source}: the examples are 3-D volumes ({shown}); pass "
        f"--volume {spatial[0]} to train on volumes")
  if len(spatial) == 2 and ndim == 3:
    raise ConfigError(
        f"--volume {size} trains on 3-D volumes, but {dataset.source} holds "
        f"2-D images ({shown}); use a CT/MR dataset (--data dicom:PATH or "
        "nifti:PATH) or drop --volume")
  if spatial != (size,) * ndim:
    flag = "--volume" if ndim == 3 else "--image-size"
    raise DataError(
        f"{dataset.source}: images are {shown} but {flag} is {size}; pass "
        f"{flag} {spatial[0]} or use a file of the requested size")


def check_image_data(dataset: Dataset, data_config) -> tuple[int, int]:
  """`check_image_shape` for the config's --image-size / --volume, plus the
  resolution plan's check of that size; returns (ndim, size)."""
  ndim, size = image_ndim_and_size(data_config)
  check_image_shape(dataset, dataset.example_shape("image")[:-1], ndim, size)
  try:
    num_resolution_stages(size)
  except ValueError as e:
    flag = "--volume" if ndim == 3 else "--image-size"
    raise ConfigError(f"{flag}: {e}") from None
  return ndim, size
