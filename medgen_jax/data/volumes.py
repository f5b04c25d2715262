"""Medical volumes (CT, MR) in one canonical orientation.

Every reader (DICOM series in `data/dicom_files.py`, NIfTI in
`data/nifti_files.py`) returns `Volume`s whose voxel array is indexed
[x, y, z] in RAS+ order: x grows toward the patient's Right, y toward
Anterior, z toward Superior. So "axial" means the same for every file, and
the planes below are cut the way radiologists view them:

  * axial    (fixed z): rows anterior -> posterior, columns patient right ->
    left (the patient's right on the image's left, seen from the feet);
  * coronal  (fixed y): rows superior -> inferior, columns right -> left;
  * sagittal (fixed x): rows superior -> inferior, columns anterior ->
    posterior.

The reorientation is a permutation and flips of the voxel axes chosen from the
affine (the world axis each voxel axis is closest to), as nibabel's
`as_closest_canonical` does; no resampling happens, so oblique acquisitions
keep their (slightly oblique) voxel grid and only their axis labels change.

Only numpy here: the readers bring pydicom or nibabel.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from medgen_jax.errors import DataError

PLANES = ("axial", "coronal", "sagittal")
# Plane -> the volume axis (x=0, y=1, z=2) held fixed when cutting it.
PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
  """One 3-D image in canonical RAS+ voxel order.

  Attributes:
    array: float32 [x, y, z] physical values (Hounsfield units for CT after
      RescaleSlope/RescaleIntercept; scanner units for MR).
    spacing: voxel size in mm along x, y, z.
    modality: "CT", "MR", ... ("" when the file does not say).
    patient: patient id ("" when the file has none).
    series: series id (DICOM SeriesInstanceUID, or the NIfTI file's name).
    source: the file or folder it came from, for messages.
  """

  array: np.ndarray
  spacing: tuple[float, float, float]
  modality: str
  patient: str
  series: str
  source: str

  def __post_init__(self):
    a = np.asarray(self.array, dtype=np.float32)
    if a.ndim != 3 or min(a.shape) < 1:
      raise DataError(f"{self.source}: a volume needs a 3-D array [x, y, z], "
                      f"got shape {a.shape}")
    spacing = tuple(float(s) for s in self.spacing)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
      raise DataError(f"{self.source}: voxel spacing {self.spacing} is not "
                      "three positive sizes in mm; the file's geometry "
                      "(PixelSpacing / pixdim) is broken")
    if not np.isfinite(a).all():
      raise DataError(f"{self.source}: the volume holds NaN or infinite "
                      "values; clean the file")
    object.__setattr__(self, "array", a)
    object.__setattr__(self, "spacing", spacing)

  @property
  def group(self) -> str:
    """What splits keep together: the patient, or the series without one."""
    return self.patient or self.series


def canonical(array: np.ndarray, affine: np.ndarray
              ) -> tuple[np.ndarray, tuple[float, float, float]]:
  """Reorients voxels [i, j, k] with a RAS+ `affine` to canonical [x, y, z].

  Args:
    array: [i, j, k] voxel values.
    affine: float [4, 4], voxel index -> RAS+ mm (NIfTI's convention; DICOM's
      LPS affine becomes RAS+ by negating its first two rows).

  Returns:
    (array [x, y, z] (a view: axes permuted and flipped), spacing in mm along
    x, y, z).

  Raises:
    DataError: the affine is singular or not finite (a broken header).
  """
  affine = np.asarray(affine, dtype=np.float64)
  rot = affine[:3, :3]
  if (not np.isfinite(rot).all()) or abs(np.linalg.det(rot)) < 1e-12:
    raise DataError("the voxel-to-world affine is singular or not finite")
  zooms = np.sqrt((rot ** 2).sum(axis=0))  # mm per voxel step, per voxel axis
  cosines = rot / zooms  # column v: direction of voxel axis v in RAS
  # Give each world axis the voxel axis closest to it, greedily by the
  # largest |cosine| (unique even for 45-degree obliques).
  world_of = [-1] * 3
  taken = set()
  order = np.dstack(np.unravel_index(np.argsort(-np.abs(cosines), axis=None),
                                     (3, 3)))[0]
  for w, v in order:
    if world_of[v] < 0 and w not in taken:
      world_of[v] = int(w)
      taken.add(int(w))
  perm = [world_of.index(w) for w in range(3)]  # voxel axis for world x, y, z
  out = np.transpose(array, perm)
  for w, v in enumerate(perm):
    if cosines[w, v] < 0:
      out = np.flip(out, axis=w)
  spacing = tuple(float(zooms[v]) for v in perm)
  return out, spacing


def cut(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
  """The 2-D slice `index` of a canonical [x, y, z, ...] array.

  Returns [rows, cols, ...] in the viewing convention of the module
  docstring (trailing axes, e.g. channels, are kept).
  """
  if plane == "axial":
    s = volume[:, :, index]          # [x, y]
    return np.swapaxes(s, 0, 1)[::-1, ::-1]   # rows A->P, cols R->L
  if plane == "coronal":
    s = volume[:, index, :]          # [x, z]
    return np.swapaxes(s, 0, 1)[::-1, ::-1]   # rows S->I, cols R->L
  if plane == "sagittal":
    s = volume[index, :, :]          # [y, z]
    return np.swapaxes(s, 0, 1)[::-1, ::-1]   # rows S->I, cols A->P
  raise ValueError(f"unknown plane {plane!r}; expected one of {PLANES}")


def plane_spacing(spacing, plane: str) -> tuple[float, float]:
  """(row, column) pixel size in mm of `plane` slices of a volume."""
  sx, sy, sz = spacing
  return {"axial": (sy, sx), "coronal": (sz, sx),
          "sagittal": (sz, sy)}[plane]


def middle_slices(volumes: np.ndarray) -> list[np.ndarray]:
  """The middle axial, coronal and sagittal slices of [n, x, y, z, c].

  Returns three arrays [n, rows, cols, c] (for sample grids).
  """
  n, x, y, z, c = volumes.shape
  return [np.stack([cut(v, p, {0: x, 1: y, 2: z}[PLANE_AXIS[p]] // 2)
                    for v in volumes]) for p in PLANES]
