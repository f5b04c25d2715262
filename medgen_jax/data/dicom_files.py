"""DICOM CT and MR series as canonical `Volume`s (`--data dicom:PATH`).

`read_dicom(path, series)` takes one DICOM file or a folder searched
recursively. DICOM files often have no suffix, so every file is tried: hidden
files, files that are not DICOM (no "DICM" marker) and DICOMDIR indexes are
skipped. Headers are read first, without pixels; pixel data is read only for
the series kept.

* Series: the files are grouped by SeriesInstanceUID and every image series
  becomes one Volume (sorted by patient id, then series UID); `series` picks
  one UID, or "single" requires the folder to hold exactly one series.
* Slice order: by position along the slice normal n = row direction x column
  direction (ImageOrientationPatient), i.e. the projection of
  ImagePositionPatient onto n, never by file name. InstanceNumber orders
  only slices without a position (the slice step is then
  SpacingBetweenSlices, else SliceThickness, else 1 mm). The frames of a
  multi-frame file are slices, placed by their per-frame functional groups
  when these give positions.
* Geometry: the voxel grid [column, row, slice] and its LPS affine
  (PixelSpacing, ImageOrientationPatient, the position of the first slice,
  the slice step) are turned into RAS+ and reoriented to canonical [x, y, z]
  by `volumes.canonical` (axis permutations and flips, no resampling).
  Files without orientation, position or pixel spacing are taken as axial
  slices of 1 mm pixels.
* Values: the modality LUT (RescaleSlope / RescaleIntercept) is applied, so
  CT volumes are in Hounsfield units; float32.

Refused, with a one-line DataError naming the file or folder: a non-image
object given as the file (an ECG waveform, a structured report, an RT plan;
in a folder such objects are skipped), a folder without image series, files
without SeriesInstanceUID, image headers without pixel data, colour images,
series mixing image sizes, pixel spacings or orientations, duplicate slice
positions, uneven slice gaps (a missing slice), compressed pixel data
without an installed decoder (naming the package that decodes it), and
series larger than the memory allowed (`registry.memory_limit_bytes`).

pydicom is the optional `imaging` extra, imported only when reading.
"""

from __future__ import annotations

import dataclasses
import pathlib
import struct

import numpy as np

from medgen_jax.data.registry import format_bytes, memory_limit_bytes
from medgen_jax.data.volumes import Volume, canonical
from medgen_jax.errors import ConfigError, DataError

# Geometry attributes of one series may differ by this much (direction
# cosines, mm of pixel spacing) and still count as the same.
TOLERANCE = 1e-4
# Slices closer than this (mm) along the normal are duplicates; a gap may
# differ from the series' median gap by max(this, GAP_FRACTION of it).
MIN_GAP_MM = 0.01
GAP_FRACTION = 0.01
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage

# Modalities of objects that are not image grids of CT/MR values.
NON_IMAGE_MODALITIES = {
    "ECG": "ECG waveform", "HD": "hemodynamic waveform",
    "EPS": "electrophysiology waveform", "RESP": "respiratory waveform",
    "AU": "audio waveform", "SR": "structured report",
    "KO": "key object selection", "PR": "presentation state",
    "DOC": "encapsulated document", "RTPLAN": "RT plan",
    "RTSTRUCT": "RT structure set", "RTRECORD": "RT treatment record",
    "RTDOSE": "RT dose", "SEG": "segmentation", "REG": "registration",
    "FID": "fiducials",
}
# Errors pydicom raises on a corrupt header or undecodable pixel data.
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError,
                IndexError, AttributeError, RuntimeError, NotImplementedError,
                struct.error)
_HINT = "--data dicom: reads CT/MR image series"


def _pydicom():
  try:
    import pydicom  # noqa: PLC0415 (optional extra)
  except ImportError:
    raise ConfigError("reading DICOM needs pydicom: pip install "
                      "'medgen_jax[imaging]'") from None
  return pydicom


@dataclasses.dataclass
class _Image:
  """Header facts of one image file (one slice, or frames of a multi-frame).

  Attributes:
    path: the file.
    uid: SeriesInstanceUID.
    patient: PatientID ("" if none).
    modality: Modality ("" if none).
    rows, cols: pixel matrix size.
    pixel_spacing: (between rows, between columns) in mm, or None.
    orientation: ImageOrientationPatient [6] (row then column direction
      cosines, LPS), or None.
    positions: ImagePositionPatient [3] (LPS mm) per frame, None if unknown.
    origin: the file's top-level ImagePositionPatient [3], or None.
    step: slice step (mm) when positions do not give it: SpacingBetweenSlices
      (signed), else SliceThickness, else 1.0.
    instance: InstanceNumber (0 if none), the order without positions.
    samples: SamplesPerPixel (1 = grayscale).
    has_pixels: whether the file holds pixel data.
  """

  path: pathlib.Path
  uid: str
  patient: str
  modality: str
  rows: int
  cols: int
  pixel_spacing: tuple[float, float] | None
  orientation: np.ndarray | None
  positions: list[np.ndarray | None]
  origin: np.ndarray | None
  step: float
  instance: int
  samples: int
  has_pixels: bool

  @property
  def frames(self) -> int:
    return len(self.positions)

  def label(self, frame: int) -> str:
    """The file (and frame) of one slice, for messages."""
    return f"{self.path} (frame {frame + 1})" if self.frames > 1 else str(
        self.path)


# --------------------------------------------------------------- headers


def _floats(ds, keyword: str, count: int, path) -> np.ndarray | None:
  """`count` numbers of element `keyword` of `ds` (None when absent)."""
  value = ds.get(keyword) if ds is not None else None
  if value is None or value == "":
    return None
  values = [value] if isinstance(value, (int, float, str)) else list(value)
  try:
    out = np.array([float(v) for v in values], dtype=np.float64)
  except (TypeError, ValueError):
    out = np.array([])
  if out.shape != (count,) or not np.isfinite(out).all():
    raise DataError(f"{path}: {keyword} is {value!r}; expected {count} "
                    "numbers (the header is broken: re-export the file)")
  return out


def _integer(ds, keyword: str, path, default: int) -> int:
  value = ds.get(keyword)
  if value is None or value == "":
    return default
  try:
    return int(value)
  except (TypeError, ValueError):
    raise DataError(f"{path}: {keyword} is {value!r}; expected an integer "
                    "(the header is broken: re-export the file)") from None


def _group_item(ds, group: str, index: int, sequence: str):
  """Item 0 of functional-group `sequence` in `ds.<group>[index]`, or None."""
  groups = ds.get(group)
  if not groups or len(groups) <= index:
    return None
  inner = groups[index].get(sequence)
  return inner[0] if inner else None


def _first(keyword: str, *datasets):
  """The first of `datasets` (None entries skipped) holding `keyword`."""
  for ds in datasets:
    if ds is not None and ds.get(keyword) not in (None, ""):
      return ds
  return None


def _step(path, *datasets) -> float:
  """SpacingBetweenSlices (signed), else SliceThickness, else 1.0 mm."""
  for keyword in ("SpacingBetweenSlices", "SliceThickness"):
    value = _floats(_first(keyword, *datasets), keyword, 1, path)
    if value is not None and abs(value[0]) > 0:
      return float(value[0]) if keyword == "SpacingBetweenSlices" else abs(
          float(value[0]))
  return 1.0


def _image(ds, path: pathlib.Path, has_pixels: bool) -> _Image:
  """The `_Image` of an image header `ds` (read without pixels)."""
  uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
  if not uid:
    raise DataError(f"{path}: the file has no SeriesInstanceUID, so its "
                    "series is unknown; re-export the series from the "
                    "scanner or PACS, or remove the file")
  rows = _integer(ds, "Rows", path, 0)
  cols = _integer(ds, "Columns", path, 0)
  if rows < 1 or cols < 1:
    raise DataError(f"{path}: Rows/Columns are {rows}x{cols}; an image needs "
                    "both (the header is broken: re-export the file)")
  frames = max(1, _integer(ds, "NumberOfFrames", path, 1))
  shared = "SharedFunctionalGroupsSequence"
  per_frame = "PerFrameFunctionalGroupsSequence"
  orient = _first("ImageOrientationPatient", ds,
                  _group_item(ds, shared, 0, "PlaneOrientationSequence"),
                  _group_item(ds, per_frame, 0, "PlaneOrientationSequence"))
  measures = (_group_item(ds, shared, 0, "PixelMeasuresSequence"),
              _group_item(ds, per_frame, 0, "PixelMeasuresSequence"))
  spacing = _floats(_first("PixelSpacing", ds, *measures), "PixelSpacing", 2,
                    path)
  if spacing is not None and not (spacing > 0).all():
    raise DataError(f"{path}: PixelSpacing is {list(spacing)}; expected two "
                    "positive sizes in mm (the header is broken)")
  origin = _floats(ds, "ImagePositionPatient", 3, path)
  positions = []
  for i in range(frames):
    item = _group_item(ds, per_frame, i, "PlanePositionSequence")
    positions.append(_floats(item, "ImagePositionPatient", 3, path))
  if frames == 1 and positions[0] is None:
    positions[0] = origin
  return _Image(
      path=path, uid=uid, patient=str(ds.get("PatientID", "") or ""),
      modality=str(ds.get("Modality", "") or ""), rows=rows, cols=cols,
      pixel_spacing=None if spacing is None else tuple(spacing),
      orientation=_floats(orient, "ImageOrientationPatient", 6, path),
      positions=positions, origin=origin, step=_step(path, ds, *measures),
      instance=_integer(ds, "InstanceNumber", path, 0),
      samples=_integer(ds, "SamplesPerPixel", path, 1),
      has_pixels=has_pixels)


def _read_header(pydicom, path: pathlib.Path):
  """(header dataset, has pixel data) of `path`; None if it is not DICOM."""
  try:
    with open(path, "rb") as f:
      ds = pydicom.dcmread(f, stop_before_pixels=True)
      tag = f.read(4)  # dcmread stops at (7FE0,xxxx), the pixel data
  except pydicom.errors.InvalidDicomError:
    return None
  except _READ_ERRORS as e:
    raise DataError(f"{path}: unreadable DICOM header ({e}); the file is "
                    "truncated or corrupt: re-export it or remove it") from None
  syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
  deflated = syntax == "1.2.840.10008.1.2.1.99"  # read whole: tag unknown
  has_pixels = deflated or tag[:2] in (b"\xe0\x7f", b"\x7f\xe0")
  return ds, has_pixels


def _sop_class(ds) -> str:
  sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
  return str(sop or "")


def _non_image(pydicom, ds, has_pixels: bool) -> str:
  """What a non-image object is ("12-lead ECG waveform", ...); "" if image."""
  sop = _sop_class(ds)
  name = pydicom.uid.UID(sop).name if sop else ""
  modality = str(ds.get("Modality", "") or "").upper()
  if "Waveform" in name:
    return name.removesuffix(" Storage").replace("Waveform", "waveform")
  if name.endswith("SR Storage") or " SR " in name:
    return "structured report"
  if modality in NON_IMAGE_MODALITIES:
    return NON_IMAGE_MODALITIES[modality]
  has_size = ds.get("Rows") is not None or ds.get("Columns") is not None
  if has_size or name.endswith("Image Storage") or has_pixels:
    return ""
  return modality or "non-image"


def _short(what: str) -> str:
  return "waveform" if "waveform" in what else what


# --------------------------------------------------------------- scanning


def _candidates(path: pathlib.Path) -> list[pathlib.Path]:
  """The visible files of folder `path` (recursive), DICOMDIRs left out."""
  return sorted(
      p for p in path.rglob("*")
      if p.is_file() and p.name.upper() != "DICOMDIR"
      and not any(part.startswith(".") for part in p.relative_to(path).parts))


def _scan_file(pydicom, path: pathlib.Path) -> list[_Image]:
  """The image of a single file `path`; other objects are refused."""
  header = _read_header(pydicom, path)
  if header is None:
    raise DataError(f"{path}: not a DICOM file (no 'DICM' marker at byte "
                    "128); --data dicom: takes a DICOM file or a folder of "
                    "them")
  ds, has_pixels = header
  sop = _sop_class(ds)
  if sop == DICOMDIR_SOP_CLASS or path.name.upper() == "DICOMDIR":
    raise DataError(f"{path}: is a DICOMDIR (an index of a disc), not an "
                    "image; point --data dicom: at the folder holding it")
  what = _non_image(pydicom, ds, has_pixels)
  if what:
    name = pydicom.uid.UID(sop).name if sop else "unknown"
    raise DataError(f"{path}: is a DICOM {what} object (SOP class {name}), "
                    f"not an image; {_HINT}")
  return [_image(ds, path, has_pixels)]


def _scan_folder(pydicom, folder: pathlib.Path) -> list[_Image]:
  """The image headers of `folder`; non-images and non-DICOM are skipped."""
  files = _candidates(folder)
  if not files:
    raise DataError(f"{folder}: the folder holds no files; --data dicom: "
                    "takes a DICOM file or a folder of CT/MR series")
  images, skipped, not_dicom = [], {}, 0
  for path in files:
    header = _read_header(pydicom, path)
    if header is None:
      not_dicom += 1
      continue
    ds, has_pixels = header
    if _sop_class(ds) == DICOMDIR_SOP_CLASS:
      continue
    what = _non_image(pydicom, ds, has_pixels)
    if what:
      skipped[_short(what)] = skipped.get(_short(what), 0) + 1
      continue
    images.append(_image(ds, path, has_pixels))
  if images:
    return images
  if not skipped:
    raise DataError(f"{folder}: none of its {len(files)} files is DICOM (no "
                    "'DICM' marker at byte 128); point --data dicom: at a "
                    "folder of CT/MR DICOM files")
  found = ", ".join(f"{n} {what} object{'s' * (n > 1)}"
                    for what, n in sorted(skipped.items()))
  other = f" and {not_dicom} non-DICOM file{'s' * (not_dicom > 1)}" * (
      not_dicom > 0)
  raise DataError(f"{folder}: holds no image series, only {found}{other}; "
                  f"{_HINT}")


# --------------------------------------------------------------- series


def _describe(uid: str, images: list[_Image]) -> str:
  slices = sum(im.frames for im in images)
  modality = images[0].modality or "no modality"
  return f"{uid} ({modality}, {slices} slice{'s' * (slices > 1)})"


def _select(groups: dict[str, list[_Image]], series: str, source
            ) -> list[str]:
  """The series UIDs to read, sorted by (patient id, UID)."""
  uids = sorted(groups, key=lambda u: (groups[u][0].patient, u))
  if not series:
    return uids
  listing = ", ".join(_describe(u, groups[u]) for u in uids[:5]) + (
      f", and {len(uids) - 5} more" if len(uids) > 5 else "")
  if series == "single":
    if len(uids) != 1:
      raise DataError(f"{source}: holds {len(uids)} series ({listing}); "
                      "pass --series UID to choose one")
    return uids
  if series not in groups:
    raise DataError(f"{source}: no image series {series}; the "
                    f"{len(uids)} here: {listing}; pass one of these to "
                    "--series (or leave --series out to read them all)")
  return [series]


def _check_images(uid: str, images: list[_Image], source) -> None:
  """Grayscale, pixel data present, one size / spacing / orientation."""
  first = images[0]
  for im in images:
    if im.samples != 1:
      raise DataError(f"{im.path}: SamplesPerPixel is {im.samples} (a colour "
                      "image); CT/MR series are grayscale: remove the file "
                      "or pass --series to pick another series")
    if not im.has_pixels:
      raise DataError(f"{im.path}: has no pixel data (PixelData element "
                      "missing); re-export the series with its images, or "
                      "remove the file")
    detail = _difference(first, im)
    if detail:
      raise DataError(f"series {uid} in {source} mixes images of different "
                      f"size/orientation (e.g. {detail} in {im.path}); split "
                      "the folder or pass --series")


def _difference(a: _Image, b: _Image) -> str:
  """How `b` differs from `a` in size, pixel spacing or orientation; ""."""
  if (a.rows, a.cols) != (b.rows, b.cols):
    return f"{a.rows}x{a.cols} and {b.rows}x{b.cols}"

  def differ(x, y) -> bool:
    if x is None or y is None:
      return (x is None) != (y is None)
    return bool(np.max(np.abs(np.subtract(x, y))) > TOLERANCE)

  def text(x, unit="") -> str:
    return "none" if x is None else "x".join(f"{v:g}" for v in x) + unit

  if differ(a.pixel_spacing, b.pixel_spacing):
    return (f"pixel spacing {text(a.pixel_spacing, ' mm')} and "
            f"{text(b.pixel_spacing, ' mm')}")
  if differ(a.orientation, b.orientation):
    return (f"orientation {text(a.orientation)} and "
            f"{text(b.orientation)}")
  return ""


def _directions(image: _Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(row direction, column direction, slice normal), unit vectors in LPS."""
  if image.orientation is None:
    return np.eye(3)[0], np.eye(3)[1], np.eye(3)[2]
  u, v = image.orientation[:3], image.orientation[3:]
  normal = np.cross(u, v)
  size = np.linalg.norm(normal)
  if size < 0.5:
    raise DataError(f"{image.path}: ImageOrientationPatient "
                    f"{list(image.orientation)} is not two perpendicular unit "
                    "vectors (the header is broken: re-export the file)")
  return (u / np.linalg.norm(u), v / np.linalg.norm(v), normal / size)


def _mm(value: float) -> str:
  """A distance for messages: "3.0", or "0.625" when one decimal hides it."""
  return (f"{value:.1f}" if abs(value - round(value, 1)) < 1e-3
          else f"{value:.3f}")


def _check_gaps(uid: str, source, labels: list[str],
                along: np.ndarray) -> float:
  """The median gap of sorted slice positions `along` [n]; refuses
  duplicates and uneven gaps."""
  gaps = np.diff(along)  # [n - 1]
  for i, gap in enumerate(gaps):
    if gap < MIN_GAP_MM:
      raise DataError(f"series {uid} in {source}: {labels[i]} and "
                      f"{labels[i + 1]} are both at slice position "
                      f"{_mm(along[i])} mm (duplicate slices); remove one "
                      "copy, or split the folder if these are two "
                      "acquisitions")
  # The lower median: with two gaps, the smaller one is the series' step.
  median = float(np.sort(gaps)[(len(gaps) - 1) // 2])
  for i, gap in enumerate(gaps):
    if abs(gap - median) > max(MIN_GAP_MM, GAP_FRACTION * median):
      raise DataError(f"series {uid} in {source}: gap of {_mm(gap)} mm before "
                      f"{labels[i + 1]} where the series steps {_mm(median)} "
                      "mm: a missing slice?; add the missing file(s) or pass "
                      "--series to read another series")
  return median


def _geometry(uid: str, images: list[_Image], source
              ) -> tuple[list[tuple[int, int]], np.ndarray]:
  """Slice order and voxel-to-LPS affine of one series.

  Returns:
    (the slices in stack order as (image index, frame index), float [4, 4]
    affine from voxel [column c, row r, slice k] to LPS mm).
  """
  first = images[0]
  u, v, normal = _directions(first)
  slices = [(i, f) for i, im in enumerate(images) for f in range(im.frames)]
  positions = [images[i].positions[f] for i, f in slices]
  step = first.step
  if all(p is not None for p in positions):
    along = np.array([float(p @ normal) for p in positions])  # [n]
    order = np.argsort(along, kind="stable")
    slices = [slices[o] for o in order]
    labels = [images[i].label(f) for i, f in slices]
    if len(slices) > 1:
      step = _check_gaps(uid, source, labels, along[order])
    origin = positions[order[0]]
  else:  # no positions: InstanceNumber order, the header's step
    slices.sort(key=lambda s: (images[s[0]].instance, str(images[s[0]].path),
                               s[1]))
    start = images[slices[0][0]]
    origin = start.origin if start.origin is not None else np.zeros(3)
  row_mm, col_mm = first.pixel_spacing or (1.0, 1.0)
  affine = np.eye(4)
  affine[:3, 0] = u * col_mm      # column index c runs along the row
  affine[:3, 1] = v * row_mm      # row index r runs down the column
  affine[:3, 2] = normal * step   # slice index k
  affine[:3, 3] = origin
  return slices, affine


def _check_memory(uid: str, images: list[_Image], source, before: int
                  ) -> int:
  """Bytes of the series as float32 added to `before`; refuses too many."""
  slices = sum(im.frames for im in images)
  need = slices * images[0].rows * images[0].cols * 4
  limit = memory_limit_bytes()
  if limit is not None and before + need > limit:
    total = (f" ({format_bytes(before + need)} with the series before it)"
             if before else "")
    raise DataError(f"series {uid} in {source}: {slices} slices of "
                    f"{images[0].rows}x{images[0].cols} take "
                    f"{format_bytes(need)} as float32{total}, more than the "
                    f"{format_bytes(limit)} allowed; pass --series UID to "
                    "read fewer series")
  return before + need


# --------------------------------------------------------------- pixels


def _decoder_hint(syntax: str) -> str:
  """Which package decodes pixel data of transfer syntax `syntax`."""
  jpeg_ls = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
  jpeg = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
          "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}
  jpeg_2000 = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
               "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
               "1.2.840.10008.1.2.4.203"}
  if syntax in jpeg_ls:
    return "install pyjpegls (or pylibjpeg with pylibjpeg-libjpeg)"
  if syntax in jpeg:
    return "install pylibjpeg with pylibjpeg-libjpeg, or Pillow"
  if syntax in jpeg_2000:
    return ("install pylibjpeg with pylibjpeg-openjpeg, or Pillow with "
            "OpenJPEG")
  return "install pylibjpeg and its plugins or GDCM (python-gdcm)"


def _decode_error(pydicom, path, ds, error: Exception) -> DataError:
  syntax = pydicom.uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
  reason = str(error).splitlines()[0] if str(error) else type(error).__name__
  if syntax and syntax.is_compressed:
    missing = "missing" in str(error) or isinstance(error, NotImplementedError)
    if missing:
      return DataError(f"{path}: no installed decoder reads its {syntax.name} "
                       f"pixel data (transfer syntax {syntax}); "
                       f"{_decoder_hint(str(syntax))}")
    return DataError(f"{path}: cannot decode its {syntax.name} pixel data "
                     f"({reason}); the file is corrupt, or "
                     f"{_decoder_hint(str(syntax))}")
  return DataError(f"{path}: cannot read its pixel data ({reason}); the file "
                   "is truncated or corrupt: re-export it or remove it")


def _physical(raw: np.ndarray, ds) -> np.ndarray:
  """Stored values -> physical ones (HU for CT) by the modality LUT."""
  from pydicom.pixels import apply_modality_lut  # noqa: PLC0415
  for keyword in ("RescaleSlope", "RescaleIntercept"):
    if keyword in ds and ds[keyword].value in (None, ""):
      del ds[keyword]  # an empty element: not given
  if ds.get("RescaleSlope") is None and not ds.get("ModalityLUTSequence"):
    item = _group_item(ds, "SharedFunctionalGroupsSequence", 0,
                       "PixelValueTransformationSequence")
    if item is not None and item.get("RescaleSlope") is not None:
      return raw * float(item.RescaleSlope) + float(
          item.get("RescaleIntercept", 0) or 0)
  return apply_modality_lut(raw, ds)


def _pixels(pydicom, image: _Image) -> np.ndarray:
  """float32 [frames, rows, cols] physical values of one file."""
  try:
    ds = pydicom.dcmread(image.path)
  except _READ_ERRORS as e:
    raise DataError(f"{image.path}: unreadable DICOM file ({e}); the file is "
                    "truncated or corrupt: re-export it or remove it") from None
  if not any(k in ds for k in ("PixelData", "FloatPixelData",
                               "DoubleFloatPixelData")):
    raise DataError(f"{image.path}: has no pixel data (PixelData element "
                    "missing); re-export the series with its images, or "
                    "remove the file")
  try:
    raw = ds.pixel_array
  except _READ_ERRORS as e:
    raise _decode_error(pydicom, image.path, ds, e) from None
  shape = (image.frames, image.rows, image.cols)
  if raw.size != np.prod(shape):
    raise DataError(f"{image.path}: its pixel data has shape {raw.shape}; "
                    f"the header says {image.frames} frame(s) of "
                    f"{image.rows}x{image.cols} (a corrupt file)")
  return np.asarray(_physical(raw.reshape(shape), ds), dtype=np.float32)


def _volume(pydicom, uid: str, images: list[_Image], source) -> Volume:
  """One series as a canonical Volume (headers checked, pixels read)."""
  slices, affine_lps = _geometry(uid, images, source)
  first = images[0]
  stack = np.empty((first.cols, first.rows, len(slices)), np.float32)
  where = {}  # image index -> [(frame, slice index k)]
  for k, (i, f) in enumerate(slices):
    where.setdefault(i, []).append((f, k))
  for i, places in where.items():
    frames = _pixels(pydicom, images[i])  # [frames, rows, cols]
    for f, k in places:
      stack[:, :, k] = frames[f].T  # [cols, rows]
  affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # LPS -> RAS
  array, spacing = canonical(stack, affine_ras)
  return Volume(array=np.ascontiguousarray(array), spacing=spacing,
                modality=first.modality, patient=first.patient, series=uid,
                source=str(source))


def read_dicom(path: pathlib.Path, series: str = "") -> list[Volume]:
  """The CT/MR image series of a DICOM file or folder as canonical Volumes.

  Args:
    path: one DICOM file, or a folder searched recursively.
    series: "" for every image series (sorted by patient id, then series
      UID), a SeriesInstanceUID for that series only, or "single" when the
      folder must hold exactly one series.

  Returns:
    One `Volume` per series: float32 [x, y, z] in RAS+ order, Hounsfield
    units for CT. Slices without ImageOrientationPatient,
    ImagePositionPatient or PixelSpacing are taken as axial with 1 mm pixels.

  Raises:
    ConfigError: pydicom is not installed.
    DataError: see the module docstring for what is refused.
  """
  pydicom = _pydicom()
  path = pathlib.Path(path)
  if not path.exists():
    raise DataError(f"{path}: no such file or folder; --data dicom:PATH takes "
                    "a DICOM file or a folder of them")
  images = (_scan_file(pydicom, path) if path.is_file()
            else _scan_folder(pydicom, path))
  groups: dict[str, list[_Image]] = {}
  for im in images:
    groups.setdefault(im.uid, []).append(im)
  uids = _select(groups, series.strip(), path)
  used = 0
  for uid in uids:
    _check_images(uid, groups[uid], path)
    _geometry(uid, groups[uid], path)  # order errors before any pixels
    used = _check_memory(uid, groups[uid], path, used)
  return [_volume(pydicom, uid, groups[uid], path) for uid in uids]
