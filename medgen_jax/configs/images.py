"""Data options shared by the image families (the GAN and the VAE).

The image datasets (phantoms, MedMNIST, `tfds:NAME`, and CT/MR volumes from
`dicom:PATH` / `nifti:PATH`) read these fields of the `data` section; an
image family's config adds them with `add_image_data_options(config.data)`
and its flags with `Flag(*f) for f in VOLUME_FLAGS`.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict


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
  # CT / MR volumes (data/volume_datasets.py).
  data.window = "auto"          # auto | percentile | lung | mediastinum | soft | bone | brain | C,W (HU)
  data.plane = "axial"          # axial | coronal | sagittal (2-D slices)
  data.slice_stride = 1         # every k-th slice
  data.min_body = 0.05          # skip slices / patches with less body than this
  data.volume = 0               # 0: 2-D slices; N: 3-D volumes of N^3 voxels
  data.volume_spacing = 0.0     # mm; 0: fit each whole volume in N^3; > 0: N^3 patches at this spacing
  data.patch_stride = 0         # voxels between patches; 0 = N // 2
  data.series = ""              # DICOM: "" every series | single | a SeriesInstanceUID
  data.labels = ""              # CSV id,label (patient id, series UID or file name)
  data.val_fraction = 0.15      # of patients (volumes are split by patient)
  data.test_fraction = 0.15
  # Derived from the data when a 3-D run starts: isotropic voxel size in mm
  # (written into generated NIfTI volumes).
  data.voxel_spacing = config_dict.placeholder(float)


# `medgen train gan|vae` flags of the CT/MR options: (flag, field, help).
VOLUME_FLAGS = (
    ("--window", "data.window", "CT/MR intensity window: auto | percentile | "
     "lung | mediastinum | soft | bone | brain | CENTER,WIDTH (HU)"),
    ("--plane", "data.plane", "CT/MR slices: axial | coronal | sagittal"),
    ("--slice-stride", "data.slice_stride", "CT/MR: use every k-th slice"),
    ("--volume", "data.volume", "N: train on 3-D volumes of N^3 voxels "
     "(0 = 2-D slices)"),
    ("--series", "data.series", "DICOM: a SeriesInstanceUID, or single "
     "(the folder must hold one series); default every series"),
    ("--labels", "data.labels", "CT/MR: CSV of id,label (patient id, series "
     "UID or file name) for conditional training"),
)


def image_ndim_and_size(data) -> tuple[int, int]:
  """(spatial dims, side) of an image family's examples: (3, N) with
  `--volume N`, else (2, --image-size)."""
  volume = int(data.get("volume", 0) or 0)
  return (3, volume) if volume else (2, int(data.image_size))
