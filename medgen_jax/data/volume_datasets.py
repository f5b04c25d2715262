"""CT and MR volumes as image datasets: `--data dicom:PATH`, `nifti:PATH`.

    medgen train gan --data dicom:scans/ --window lung --image-size 64
    medgen train gan --data nifti:brain.nii.gz --plane axial
    medgen train gan --data nifti:brains/ --volume 32          # 3-D

The readers (`dicom_files.py`, `nifti_files.py`) give canonical RAS+
`Volume`s in physical units. This module turns them into the image families'
schema ("image" uint8, "label" int32):

* Intensities to [0, 1]: a CT window in Hounsfield units (`--window
  lung|mediastinum|bone|brain|soft` or `--window CENTER,WIDTH`), or, for MR
  (whose units are arbitrary), robust percentiles: the 0.5th and 99.5th
  percentiles of the volume map to 0 and 1 (`--window percentile`). "auto"
  (the default) is the soft-tissue window for CT and percentiles otherwise.
* 2-D (the default): slices of `--plane axial|coronal|sagittal` every
  `--slice-stride` slices; a slice whose body covers less than
  `data.min_body` of it is skipped (body: > -500 HU under an HU window, else
  > 10% of the normalised range). Each slice is resampled to
  `--image-size`² with the pixel spacing respected: the longer physical side
  fills the image, the other is centred and padded with 0 (the window's
  floor), so anatomy keeps its proportions whatever the pixel spacing.
* 3-D (`--volume N`): each volume resampled to isotropic voxels and fitted
  whole into N³ (`data.volume_spacing` = 0), or cut into N³ patches at
  `data.volume_spacing` mm with stride `data.patch_stride` (0 = N // 2),
  patches with too little body skipped. The image key is then
  [n, N, N, N, 1] in RAS+ order and `metadata["voxel_spacing"]` holds the
  spacing (written into generated NIfTI samples).
* Splits by patient (by series when a file names no patient, e.g. NIfTI):
  the groups are shuffled with data.seed and `data.test_fraction` /
  `data.val_fraction` of them held out (at least one group each once there
  are >= 3 / >= 4 groups). Slices of one patient never appear in two splits.
  With one or two groups everything trains and the run says so.
* Labels (optional): `--labels FILE.csv` with a header and two columns,
  an id (patient id, series UID, or NIfTI file name) and its class; every
  group must be labelled. Without it every example is class 0 (the modality).

Resampling is linear (scipy.ndimage.map_coordinates) after a Gaussian
anti-aliasing filter on the axes being shrunk.
"""

from __future__ import annotations

import csv
import math
import pathlib

import numpy as np

from medgen_jax.data.base import Dataset, image_dataset
from medgen_jax.data.registry import (FILE_FORMATS, PREFIXES, format_bytes,
                                      integer_option, memory_limit_bytes,
                                      option)
from medgen_jax.data.volumes import (PLANE_AXIS, PLANES, Volume, cut,
                                     plane_spacing)
from medgen_jax.errors import ConfigError, DataError

# CT windows (centre, width) in Hounsfield units.
WINDOWS = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
PERCENTILES = (0.5, 99.5)
BODY_HU = -500.0          # body mask threshold under an HU window
BODY_FRACTION = 0.1       # ... and in the normalised range otherwise


# ---------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------


def _fraction(value, flag: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      0.0 <= float(value) < 1.0):
    raise ConfigError(f"{flag} must be a fraction in [0, 1), got {value!r}")
  return float(value)


def parse_window(text: str) -> tuple[str, tuple[float, float] | None]:
  """`--window` -> ("auto" | "percentile" | "hu", (centre, width) or None)."""
  text = str(text).strip().lower()
  if text in ("auto", "percentile", ""):
    return (text or "auto"), None
  if text in WINDOWS:
    return "hu", WINDOWS[text]
  parts = text.split(",")
  try:
    centre, width = (float(p) for p in parts)
  except ValueError:
    raise ConfigError(
        f"--window {text!r}: expected auto, percentile, one of "
        f"{', '.join(WINDOWS)} or CENTER,WIDTH in Hounsfield units "
        "(e.g. --window -600,1500)") from None
  if not (math.isfinite(centre) and math.isfinite(width) and width > 0):
    raise ConfigError(f"--window {text!r}: the width must be > 0 HU")
  return "hu", (centre, width)


def _options(data_config, name: str) -> dict:
  get = lambda field: option(data_config, field, name,
                             kind="a CT/MR dataset")
  plane = str(get("plane"))
  if plane not in PLANES:
    raise ConfigError(f"--plane {plane!r}: expected one of {', '.join(PLANES)}")
  volume = integer_option(get("volume"), "--volume (data.volume)", 0)
  spacing = get("volume_spacing")
  if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or (
      not math.isfinite(spacing) or spacing < 0):
    raise ConfigError(f"data.volume_spacing must be >= 0 mm (0 = fit each "
                      f"whole volume), got {spacing!r}")
  min_body = get("min_body")
  if isinstance(min_body, bool) or not isinstance(min_body, (int, float)) or (
      not 0.0 <= min_body <= 1.0):
    raise ConfigError(f"data.min_body must be a fraction in [0, 1], got "
                      f"{min_body!r}")
  val = _fraction(get("val_fraction"), "data.val_fraction")
  test = _fraction(get("test_fraction"), "data.test_fraction")
  if val + test >= 1.0:
    raise ConfigError("data.val_fraction + data.test_fraction must be < 1")
  return {
      "size": integer_option(get("image_size"), "--image-size", 8),
      "window": parse_window(get("window")),
      "plane": plane,
      "stride": integer_option(get("slice_stride"), "--slice-stride", 1),
      "min_body": float(min_body),
      "volume": volume,
      "volume_spacing": float(spacing),
      "patch_stride": integer_option(get("patch_stride"),
                                     "data.patch_stride", 0),
      "series": str(get("series") or ""),
      "labels": str(get("labels") or ""),
      "val": val, "test": test,
      "seed": integer_option(data_config.get("seed", 0), "data.seed", 0),
  }


# ---------------------------------------------------------------------------
# Intensities.
# ---------------------------------------------------------------------------


def normalise(volume: Volume, window) -> tuple[np.ndarray, np.ndarray]:
  """A volume's values in [0, 1] and its body mask.

  Args:
    volume: the Volume.
    window: `parse_window`'s result.

  Returns:
    (float32 [x, y, z] in [0, 1], bool [x, y, z] body mask).

  Raises:
    ConfigError: an HU window for an MR volume (MR has no Hounsfield units).
  """
  kind, cw = window
  a = volume.array
  if kind == "auto":
    kind, cw = ("hu", WINDOWS["soft"]) if volume.modality == "CT" else (
        "percentile", None)
  if kind == "hu":
    if volume.modality == "MR":
      raise ConfigError(
          f"{volume.source}: --window in Hounsfield units for an MR series, "
          "whose intensities have no fixed unit; use --window percentile "
          "(or auto)")
    centre, width = cw
    out = (a - (centre - width / 2.0)) / width
    body = a > BODY_HU
  else:
    lo, hi = np.percentile(a, PERCENTILES)
    if not hi > lo:
      raise DataError(f"{volume.source}: the volume is constant ({lo:g}); "
                      "nothing to learn from it")
    out = (a - lo) / (hi - lo)
    body = out > BODY_FRACTION
  return np.clip(out, 0.0, 1.0).astype(np.float32), body


# ---------------------------------------------------------------------------
# Resampling.
# ---------------------------------------------------------------------------


def resample(array: np.ndarray, spacing, shape, out_spacing) -> np.ndarray:
  """Linear resampling of an n-D array onto a centred grid.

  Output voxel centres sit at `(index - (shape - 1) / 2) * out_spacing` mm
  from the centre of the input's extent; points outside the input are 0.
  Axes shrunk by a factor f > 1 are first blurred with a Gaussian of sigma
  (f - 1) / 2 input voxels (anti-aliasing).

  Args:
    array: float [n0, n1, ...].
    spacing: input voxel size in mm per axis.
    shape: output shape.
    out_spacing: output voxel size in mm per axis.

  Returns:
    float32 array of `shape`.
  """
  from scipy import ndimage  # noqa: PLC0415 (scipy comes with jax)
  spacing = np.asarray(spacing, np.float64)
  out_spacing = np.asarray(out_spacing, np.float64)
  factor = out_spacing / spacing
  sigma = np.maximum(0.0, (factor - 1.0) / 2.0)
  if sigma.any():
    array = ndimage.gaussian_filter(array, sigma, mode="nearest")
  centre_in = (np.asarray(array.shape) - 1) / 2.0
  centre_out = (np.asarray(shape) - 1) / 2.0
  coords = [(np.arange(n) - co) * f + ci
            for n, co, ci, f in zip(shape, centre_out, centre_in, factor)]
  grid = np.meshgrid(*coords, indexing="ij")
  return ndimage.map_coordinates(array, grid, order=1, mode="constant",
                                 cval=0.0).astype(np.float32)


def _fit(extent_mm: np.ndarray, size: int) -> float:
  """The isotropic pixel size that fits the longest side into `size`."""
  return float(extent_mm.max()) / size


# ---------------------------------------------------------------------------
# Examples: 2-D slices and 3-D volumes / patches.
# ---------------------------------------------------------------------------


def slices(volume: Volume, values: np.ndarray, body: np.ndarray,
           opts: dict) -> np.ndarray:
  """2-D examples of one volume: float32 [n, size, size] in [0, 1]."""
  plane, size = opts["plane"], opts["size"]
  axis = PLANE_AXIS[plane]
  rows_cols = plane_spacing(volume.spacing, plane)
  out = []
  for index in range(0, values.shape[axis], opts["stride"]):
    if cut(body, plane, index).mean() < opts["min_body"]:
      continue
    image = cut(values, plane, index)  # [rows, cols]
    extent = np.asarray(image.shape) * np.asarray(rows_cols)
    pixel = _fit(extent, size)
    out.append(resample(image, rows_cols, (size, size), (pixel, pixel)))
  return (np.stack(out) if out else np.zeros((0, size, size), np.float32))


def cubes(volume: Volume, values: np.ndarray, body: np.ndarray,
          opts: dict) -> tuple[np.ndarray, float]:
  """3-D examples of one volume: (float32 [n, N, N, N], voxel mm)."""
  n = opts["volume"]
  extent = np.asarray(values.shape) * np.asarray(volume.spacing)
  if opts["volume_spacing"] == 0:
    voxel = _fit(extent, n)
    cube = resample(values, volume.spacing, (n, n, n), (voxel,) * 3)
    return cube[None], voxel
  voxel = opts["volume_spacing"]
  shape = tuple(max(n, int(math.ceil(e / voxel))) for e in extent)
  need = 2 * 4 * int(np.prod(shape))  # values and mask, float32
  limit = memory_limit_bytes()
  if limit is not None and need > limit:
    raise ConfigError(
        f"{volume.source}: resampling to {voxel:g} mm voxels needs "
        f"~{format_bytes(need)}, more than the {format_bytes(limit)} allowed; "
        "raise data.volume_spacing")
  iso = resample(values, volume.spacing, shape, (voxel,) * 3)
  mask = resample(body.astype(np.float32), volume.spacing, shape,
                  (voxel,) * 3) > 0.5
  stride = opts["patch_stride"] or max(1, n // 2)
  starts = [list(range(0, s - n + 1, stride)) or [0] for s in shape]
  for axis, s in enumerate(shape):  # cover the far edge too
    if starts[axis][-1] != s - n:
      starts[axis].append(s - n)
  out = []
  for i in starts[0]:
    for j in starts[1]:
      for k in starts[2]:
        window = np.s_[i:i + n, j:j + n, k:k + n]
        if mask[window].mean() >= opts["min_body"]:
          out.append(iso[window])
  return (np.stack(out) if out else np.zeros((0, n, n, n), np.float32)), voxel


# ---------------------------------------------------------------------------
# Splits and labels.
# ---------------------------------------------------------------------------


def split_groups(groups: list[str], val: float, test: float,
                 seed: int) -> dict[str, list[str]]:
  """Assigns whole groups (patients) to train / val / test.

  The sorted groups are permuted with `default_rng([seed, 7])`; the first
  round(G * test) go to test (at least 1 once G >= 3 and test > 0), the next
  round(G * val) to val (at least 1 once G >= 4 and val > 0); at least one
  group always trains.
  """
  g = sorted(set(groups))
  order = [g[i] for i in np.random.default_rng([seed, 7]).permutation(len(g))]
  n_test = round(len(g) * test)
  n_val = round(len(g) * val)
  if test > 0 and len(g) >= 3:
    n_test = max(n_test, 1)
  if val > 0 and len(g) >= 4:
    n_val = max(n_val, 1)
  while n_test + n_val >= len(g) and (n_test or n_val):
    if n_val >= n_test and n_val:
      n_val -= 1
    else:
      n_test -= 1
  return {"test": sorted(order[:n_test]),
          "val": sorted(order[n_test:n_test + n_val]),
          "train": sorted(order[n_test + n_val:])}


def read_labels(path: str, volumes: list[Volume]
                ) -> tuple[dict[str, int], tuple[str, ...]]:
  """{group: class index} and the class names from a two-column CSV."""
  file = pathlib.Path(path).expanduser()
  if not file.is_file():
    raise DataError(f"{file}: labels file not found; --labels takes a CSV "
                    "with a header and the columns id,label")
  try:
    with open(file, newline="", encoding="utf-8-sig") as f:
      rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise DataError(f"{file}: cannot read the labels CSV ({e})") from None
  if len(rows) < 2 or any(len(r) < 2 for r in rows):
    raise DataError(f"{file}: expected a header and rows of two columns "
                    "id,label (patient id, series UID or NIfTI file name)")
  table = {}
  for line, row in enumerate(rows[1:], start=2):
    key, value = row[0].strip(), row[1].strip()
    if key in table and table[key] != value:
      raise DataError(f"{file}: line {line}: id {key!r} has two labels "
                      f"({table[key]!r} and {value!r})")
    table[key] = value
  names = tuple(sorted(set(table.values())))
  out, missing = {}, []
  for v in volumes:
    ids = [v.group, v.series, v.patient, pathlib.Path(v.source).name]
    found = [table[i] for i in ids if i and i in table]
    if not found:
      missing.append(v.group)
      continue
    out[v.group] = names.index(found[0])
  if missing:
    raise DataError(
        f"{file}: no label for {len(missing)} of {len(volumes)} volumes "
        f"(e.g. {', '.join(sorted(missing)[:3])}); label every patient id, "
        "series UID or file name")
  return out, names


# ---------------------------------------------------------------------------
# The dataset.
# ---------------------------------------------------------------------------


def build_dataset(name: str, volumes: list[Volume], opts: dict,
                  source: str) -> Dataset:
  """Examples of every volume, split by patient, as an "image" Dataset.

  `opts` are the validated options of `_options`.
  """
  if opts["labels"]:
    labels, class_names = read_labels(opts["labels"], volumes)
  else:
    labels = {v.group: 0 for v in volumes}
    modalities = sorted({v.modality for v in volumes if v.modality})
    class_names = ("/".join(modalities) or "volume",)
  assignment = split_groups([v.group for v in volumes], opts["val"],
                            opts["test"], opts["seed"])
  split_of = {g: s for s, gs in assignment.items() for g in gs}
  parts = {s: ([], []) for s in assignment}
  voxels = []
  for v in volumes:
    values, body = normalise(v, opts["window"])
    if opts["volume"]:
      examples, voxel = cubes(v, values, body, opts)
      voxels.append(voxel)
    else:
      examples = slices(v, values, body, opts)
    if len(examples):
      parts[split_of[v.group]][0].append(examples)
      parts[split_of[v.group]][1].append(
          np.full(len(examples), labels[v.group], np.int32))
  splits = {}
  for s, (xs, ys) in parts.items():
    if xs:
      images = np.round(np.concatenate(xs) * 255.0).astype(np.uint8)[..., None]
      splits[s] = (images, np.concatenate(ys))
  if "train" not in splits:
    raise DataError(
        f"{source}: no slice or patch has at least data.min_body = "
        f"{opts['min_body']:g} of body in it; lower --set data.min_body=... "
        "or check --window")
  groups = len(set(split_of))
  if groups < 3:
    print(f"medgen: {source}: {groups} patient(s)/series: everything "
          "trains; held-out splits are by patient and need at least 3")
  ds = image_dataset(name, splits, class_names=class_names, source=source)
  ds.metadata["groups"] = {s: list(g) for s, g in assignment.items()}
  if voxels:
    ds.metadata["voxel_spacing"] = float(np.median(voxels))
  return ds


def _read(kind: str, rest: str, series: str) -> list[Volume]:
  path = pathlib.Path(rest).expanduser()
  if not rest:
    raise ConfigError(f"--data {kind}: needs a path: --data {kind}:FOLDER "
                      "or FILE")
  if kind == "dicom":
    from medgen_jax.data.dicom_files import read_dicom  # noqa: PLC0415
    return read_dicom(path, series)
  from medgen_jax.data.nifti_files import nifti_files, read_nifti  # noqa: PLC0415
  return [read_nifti(p) for p in nifti_files(path)]


def _check_memory(volumes: list[Volume], source: str) -> None:
  limit = memory_limit_bytes()
  need = sum(v.array.nbytes for v in volumes)
  if limit is not None and need > limit:
    raise ConfigError(f"{source}: the volumes take {format_bytes(need)}, more "
                      f"than the {format_bytes(limit)} allowed; use fewer")


def load(kind: str, rest: str, data_config) -> Dataset:
  name = f"{kind}:{pathlib.Path(rest).name}"
  opts = _options(data_config, name)  # bad options fail before any reading
  volumes = _read(kind, rest, opts["series"])
  _check_memory(volumes, rest)
  return build_dataset(name, volumes, opts, source=f"{kind}:{rest}")


@PREFIXES.register("dicom")
def _dicom(rest: str, data_config) -> Dataset:
  return load("dicom", rest, data_config)


@PREFIXES.register("nifti")
def _nifti(rest: str, data_config) -> Dataset:
  return load("nifti", rest, data_config)


@FILE_FORMATS.register(".nii")
@FILE_FORMATS.register(".nii.gz")
def _nifti_file(path: pathlib.Path, data_config) -> Dataset:
  return load("nifti", str(path), data_config)


@FILE_FORMATS.register(".dcm")
def _dicom_file(path: pathlib.Path, data_config) -> Dataset:
  return load("dicom", str(path), data_config)
