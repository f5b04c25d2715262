"""`--data FILE.npz` of generated image samples as a dataset.

`medgen sample --out samples.npz` of a conditional image GAN writes
"image" uint8 [n, h, w, c] and "label" int [n]. Read through the data
registry's kind mechanism: a family whose data section sets
`data.kind = "images"` (the classifier) gets this reader for ".npz"; every example
goes into the "train" split: held-out scores then come from
`--eval-data NAME` (train on synthetic, test on real). A file may also hold
"class_names" (str [K]).
"""

from __future__ import annotations

import pathlib

import numpy as np

from medgen_jax.data import npz
from medgen_jax.data.base import (Dataset, image_dataset, to_int_labels,
                                  to_uint8_images)
from medgen_jax.data.registry import FILE_FORMATS
from medgen_jax.errors import DataError

DATA_KIND = "images"
SUFFIX = ".npz"
WHAT = ("an .npz holding 'image' (uint8 [n, h, w, c]) and 'label' (class "
        "indices [n]), such as `medgen sample --out FILE.npz` of a "
        "conditional GAN writes")


def read_samples(path: pathlib.Path, data_config) -> Dataset:
  """Reads a samples .npz into a Dataset with one "train" split."""
  del data_config
  source = str(path)
  arrays = npz.read_npz(path, what=WHAT)
  missing = [k for k in ("image", "label") if k not in arrays]
  if missing:
    raise DataError(f"{source}: missing key(s) {missing} (found "
                    f"{sorted(arrays)}); expected {WHAT}. Sample a "
                    "conditional run (medgen train gan --conditional)")
  images = to_uint8_images(arrays["image"], source=source, key="image")
  labels = to_int_labels(arrays["label"], len(images), source=source,
                         key="label")
  if "class_names" in arrays:
    names = tuple(str(n) for n in np.asarray(arrays["class_names"]).ravel())
  else:
    names = tuple(str(i) for i in range(int(labels.max()) + 1))
  if int(labels.max()) >= len(names):
    raise DataError(f"{source}: 'label' has class index {int(labels.max())} "
                    f"but 'class_names' names {len(names)} classes")
  return image_dataset(path.stem, {"train": (images, labels)},
                       class_names=names, source=source)


FILE_FORMATS.register(f"{DATA_KIND}:{SUFFIX}", read_samples)
