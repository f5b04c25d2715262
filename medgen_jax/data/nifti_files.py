"""NIfTI volumes (`.nii`, `.nii.gz`) in and out, through nibabel.

Reading: every file of `--data nifti:PATH` (one file, or a folder searched
recursively) becomes one `Volume`, reoriented to canonical RAS+ with
nibabel's `as_closest_canonical` (so "axial" means the same for every file).
A 4-D file (a time series, e.g. fMRI) contributes its first volume and says
so; more dimensions are refused. NIfTI has no patient id: each file is its
own group for the splits, unless a labels CSV maps files to patients (see
`data/volume_datasets.py`). Intensities are the file's scaled values
(scl_slope / scl_inter applied); the modality is unknown ("") unless the
description field says CT or MR.

Writing: `write_nifti(path, volumes, spacing)` stores generated volumes
[n, x, y, z, 1] as one 4-D NIfTI (x, y, z, sample) with a RAS+ affine of the
given isotropic spacing, so a viewer (or `nibabel.load`) opens them.

nibabel is the optional `imaging` extra.
"""

from __future__ import annotations

import gzip
import io
import pathlib
import zlib

import numpy as np

from medgen_jax.data.volumes import Volume
from medgen_jax.errors import ConfigError, DataError

SUFFIXES = (".nii", ".nii.gz")


def _nibabel():
  try:
    import nibabel  # noqa: PLC0415 (optional extra)
  except ImportError:
    raise ConfigError("reading or writing NIfTI needs nibabel: pip install "
                      "'medgen_jax[imaging]'") from None
  return nibabel


def is_nifti(path: pathlib.Path) -> bool:
  return path.name.lower().endswith(SUFFIXES)


def nifti_files(path: pathlib.Path) -> list[pathlib.Path]:
  """The NIfTI files of `path` (a file, or a folder searched recursively)."""
  if not path.exists():
    raise DataError(f"{path}: no such file or folder; --data nifti:PATH takes "
                    "a .nii/.nii.gz file or a folder of them")
  if path.is_file():
    if not is_nifti(path):
      raise DataError(f"{path}: not a NIfTI file (expected a name ending in "
                      ".nii or .nii.gz)")
    return [path]
  files = sorted(p for p in path.rglob("*") if p.is_file() and is_nifti(p)
                 and not any(part.startswith(".")
                             for part in p.relative_to(path).parts))
  if not files:
    raise DataError(f"{path}: the folder holds no .nii or .nii.gz files; "
                    "point --data nifti: at a NIfTI file or a folder of them")
  return files


def _modality(header) -> str:
  text = bytes(np.asarray(header.get("descrip", b""))).decode(
      "latin-1", "replace").upper()
  for m in ("CT", "MR"):
    if m in text.split() or text.startswith(m):
      return m
  return ""


def read_nifti(path: pathlib.Path) -> Volume:
  """One NIfTI file as a canonical Volume.

  Raises:
    DataError: the header is unreadable (not NIfTI, truncated, corrupt
      gzip), the image has fewer than 3 or more than 4 dimensions, or its
      affine is singular.
  """
  nib = _nibabel()
  try:
    image = nib.load(str(path))
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
      raise nib.filebasedimages.ImageFileError("not a NIfTI-1/2 image")
    shape = image.shape
  except (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError,
          OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as e:
    raise DataError(f"{path}: unreadable NIfTI header ({e}); check that the "
                    "file is a complete .nii/.nii.gz") from None
  if len(shape) == 4 and shape[3] >= 1:
    extra = f" (the first of its {shape[3]} volumes)" if shape[3] > 1 else ""
  elif len(shape) == 3:
    extra = ""
  else:
    raise DataError(f"{path}: image of shape {shape}; expected a 3-D volume "
                    "(or a 4-D series, of which the first volume is used)")
  try:
    canon = nib.as_closest_canonical(image)
    data = canon.dataobj[..., 0] if len(shape) == 4 else canon.dataobj
    array = np.asarray(data, dtype=np.float32)
  except (ValueError, OSError, EOFError, zlib.error) as e:
    raise DataError(f"{path}: cannot read the voxel data ({e}); the file is "
                    "truncated or corrupt") from None
  zooms = canon.header.get_zooms()[:3]
  if extra:
    print(f"medgen: {path.name}: 4-D file, reading its first volume{extra}")
  return Volume(array=array, spacing=tuple(float(z) for z in zooms),
                modality=_modality(image.header), patient="",
                series=path.name, source=str(path))


def nifti_bytes(volumes: np.ndarray, spacing: float,
                compress: bool = True) -> bytes:
  """Generated volumes [n, x, y, z, 1] (uint8) as NIfTI-1 bytes (gzipped
  unless `compress` is False).

  The image is 4-D (x, y, z, sample), RAS+ with `spacing` mm voxels; viewers
  show the samples as the fourth (time) dimension.
  """
  nib = _nibabel()
  if volumes.ndim != 5 or volumes.shape[-1] != 1:
    raise ConfigError(f"--out FILE.nii.gz writes 3-D volumes [n, x, y, z, 1]; "
                      f"these samples are {volumes.shape}: use --out .png or "
                      ".npz for 2-D images")
  data = np.moveaxis(volumes[..., 0], 0, -1)  # [x, y, z, n]
  affine = np.diag([spacing, spacing, spacing, 1.0])
  image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
  image.header.set_xyzt_units("mm")
  image.header["descrip"] = b"medgen_jax generated samples"
  raw = image.to_bytes()
  if not compress:
    return raw
  buf = io.BytesIO()
  with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
    f.write(raw)
  return buf.getvalue()
