"""Data options shared by the image families (the GAN today, the VAE next).

The image datasets (phantoms, MedMNIST, `tfds:NAME`) read these fields of
the `data` section; an image family's config adds them with
`add_image_data_options(config.data)`.
"""

from __future__ import annotations

import ml_collections


def add_image_data_options(data: ml_collections.ConfigDict) -> None:
  """Adds image size, phantom generation and TFDS options to `data`."""
  data.image_size = 28          # height = width; the models' resolution plan
  data.tfds_split_train = "train"
  data.tfds_split_val = ""      # "" -> no validation split from TFDS
  data.tfds_max_examples = 20000
  data.phantoms = ml_collections.ConfigDict()
  data.phantoms.num_train = 4096
  data.phantoms.num_val = 512
  data.phantoms.num_test = 512
  data.phantoms.noise_std = 0.02  # Gaussian noise, in units of full range
  data.phantoms.blur_sigma = 0.5  # Gaussian blur, in pixels (0 = none)
  data.phantoms.lesion_prob = 0.5  # fraction with a lesion (label 1)
