"""What the image families (gan, vae) share about their data's shape.

Not a family itself (the leading underscore keeps it out of `medgen
families`). Images are 2-D [h, w, c] at `--image-size`, or 3-D volumes
[x, y, z, c] at `--volume N` (CT/MR from `dicom:` / `nifti:`, see
data/volume_datasets.py); the models are built for one or the other from
the same resolution plan.
"""

from __future__ import annotations

from typing import Sequence

from medgen_jax.data.base import Dataset
from medgen_jax.errors import ConfigError, DataError


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
