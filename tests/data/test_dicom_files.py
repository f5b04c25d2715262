"""DICOM series reader: slice order, orientation, HU, spacing, refusals."""

from __future__ import annotations

import shutil
import sys
import uuid

import numpy as np
import pytest

from medgen_jax.data import dicom_files
from medgen_jax.data.dicom_files import read_dicom
from medgen_jax.errors import ConfigError
from file_helpers import raises_one_line

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402
from pydicom.uid import (CTImageStorage, EnhancedMRImageStorage,  # noqa: E402
                         ExplicitVRLittleEndian, generate_uid)

AXIAL = (1, 0, 0, 0, 1, 0)


def write_slice(path, pixels, *, series="1.2.826.0.1.3680043.8.498.1",
                patient="P1", position=(0.0, 0.0, 0.0), orientation=AXIAL,
                spacing=(1.0, 1.0), thickness=1.0, instance=1, slope=1.0,
                intercept=-1024.0, sop=CTImageStorage, modality="CT",
                with_pixels=True, **extra):
  """Writes one DICOM slice: `pixels` int16 [rows, cols] (stored values).

  `spacing` is PixelSpacing (between rows, between columns); None leaves an
  element out; `extra` sets further elements (NumberOfFrames, ...).
  """
  pixels = np.asarray(pixels, dtype=np.int16)
  meta = FileMetaDataset()
  meta.MediaStorageSOPClassUID = sop
  meta.MediaStorageSOPInstanceUID = generate_uid()
  meta.TransferSyntaxUID = ExplicitVRLittleEndian
  ds = Dataset()
  ds.file_meta = meta
  ds.SOPClassUID = sop
  ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
  ds.Modality = modality
  ds.PatientID = patient
  ds.SeriesInstanceUID = series
  ds.InstanceNumber = instance
  ds.Rows, ds.Columns = pixels.shape[-2:]
  ds.BitsAllocated = ds.BitsStored = 16
  ds.HighBit = 15
  ds.PixelRepresentation = 1
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = "MONOCHROME2"
  values = {"RescaleSlope": slope, "RescaleIntercept": intercept,
            "ImagePositionPatient": position,
            "ImageOrientationPatient": orientation,
            "PixelSpacing": spacing, "SliceThickness": thickness}
  for keyword, value in {**values, **extra}.items():
    if value is not None:
      setattr(ds, keyword, list(value) if isinstance(value, tuple) else value)
  if with_pixels:
    ds.PixelData = pixels.tobytes()
  ds.save_as(path, enforce_file_format=True)
  return path


def random_name(folder):
  """A shuffled-looking file name without suffix, as scanners write them."""
  return folder / uuid.uuid4().hex[:12]


def write_series(folder, stack, z, **kwargs):
  """Axial slices stack[k] [rows, cols] at z[k] mm, random names and order,
  InstanceNumber reversed. Returns the paths in slice order."""
  folder.mkdir(exist_ok=True)
  paths = [random_name(folder) for _ in z]
  for k in np.random.default_rng(0).permutation(len(z)):
    write_slice(paths[k], stack[k], position=(0.0, 0.0, float(z[k])),
                instance=len(z) - k, **kwargs)
  return paths


def acquire(folder, phys, sizes, orientation, **kwargs):
  """Writes the LPS grid `phys` [X, Y, Z] (voxel (i, j, k) at
  (i, j, k) * sizes mm) as slices of `orientation` (unit axis vectors)."""
  folder.mkdir()
  u, v = np.array(orientation[:3]), np.array(orientation[3:])
  n = np.cross(u, v)
  axes = [int(np.argmax(np.abs(d))) for d in (n, v, u)]
  signs = [int(np.sign(d[a])) for d, a in zip((n, v, u), axes)]
  grid = np.transpose(phys, axes)  # [slice, row, col]
  for dim, sign in enumerate(signs):
    if sign < 0:
      grid = np.flip(grid, axis=dim)
  order = np.random.default_rng(1).permutation(grid.shape[0])
  for k in order:
    index = np.zeros(3)  # grid index of pixel (0, 0) of slice k
    for dim, (a, sign) in enumerate(zip(axes, signs)):
      at = k if dim == 0 else 0
      index[a] = at if sign > 0 else phys.shape[a] - 1 - at
    write_slice(random_name(folder), grid[k] + 1024,
                position=tuple(index * np.array(sizes)),
                orientation=orientation,
                spacing=(sizes[axes[1]], sizes[axes[2]]),
                thickness=sizes[axes[0]], instance=int(k) + 1, **kwargs)
  return folder


def one(path, **kwargs):
  volumes = read_dicom(path, **kwargs)
  assert len(volumes) == 1
  return volumes[0]


# ----------------------------------------------------------- geometry


def test_slices_are_ordered_by_position_not_file_or_instance(tmp_path):
  z = [-40.0, -37.5, -35.0, -32.5, -30.0]
  stack = np.stack([np.full((3, 4), 100 * k) for k in range(5)])
  write_series(tmp_path / "ct", stack, z)
  vol = one(tmp_path / "ct")
  assert vol.array.shape == (4, 3, 5)
  for k in range(5):  # z grows superiorly with the position
    np.testing.assert_array_equal(vol.array[:, :, k], 100 * k - 1024)
  assert (vol.modality, vol.patient) == ("CT", "P1")
  assert vol.series == "1.2.826.0.1.3680043.8.498.1"
  assert vol.source == str(tmp_path / "ct")


def test_patient_right_anterior_superior_lands_at_the_top_corner(tmp_path):
  stack = np.zeros((3, 5, 4), np.int16)  # [slice, rows, cols]
  # DICOM x grows Left, y Posterior: pixel (row 0, col 0) of the highest
  # slice is the patient's right-anterior-superior corner.
  stack[2, 0, 0] = 500
  write_series(tmp_path / "ct", stack, [0.0, 2.0, 4.0])
  vol = one(tmp_path / "ct")
  assert vol.array.shape == (4, 5, 3)
  hot = np.argwhere(vol.array == 500 - 1024)
  np.testing.assert_array_equal(hot, [[3, 4, 2]])  # max x, y, z = R, A, S


@pytest.mark.parametrize("orientation", [
    (0, 1, 0, 0, 0, -1),    # sagittal
    (-1, 0, 0, 0, 1, 0),    # axial with the normal pointing down (z falls)
    (1, 0, 0, 0, 0, -1),    # coronal
])
def test_every_acquisition_gives_the_same_canonical_volume(tmp_path,
                                                           orientation):
  phys = np.random.default_rng(2).integers(0, 1000, (4, 5, 3))  # LPS [x, y, z]
  sizes = (0.5, 0.75, 2.0)
  axial = one(acquire(tmp_path / "axial", phys, sizes, AXIAL))
  other = one(acquire(tmp_path / "other", phys, sizes, orientation))
  expected = phys[::-1, ::-1, :]  # LPS -> RAS: x and y flip
  np.testing.assert_array_equal(axial.array, expected)
  np.testing.assert_array_equal(other.array, expected)
  assert axial.spacing == other.spacing == pytest.approx(sizes)


def test_spacing_is_column_row_then_slice_step(tmp_path):
  stack = np.zeros((3, 4, 6), np.int16)
  write_series(tmp_path / "ct", stack, [10.0, 12.5, 15.0],
               spacing=(0.7, 0.5), thickness=5.0)
  vol = one(tmp_path / "ct")
  assert vol.array.shape == (6, 4, 3)
  assert vol.spacing == pytest.approx((0.5, 0.7, 2.5))  # step, not thickness


def test_single_slice_takes_its_step_from_the_header(tmp_path):
  path = write_slice(tmp_path / "one.dcm", np.zeros((4, 6)), thickness=3.0,
                     SpacingBetweenSlices=2.0)
  assert one(path).spacing == pytest.approx((1.0, 1.0, 2.0))


@pytest.mark.parametrize("step,expected", [(None, [0, 1, 2]),
                                           (-4.0, [2, 1, 0])])
def test_without_positions_instance_numbers_order_the_slices(tmp_path, step,
                                                             expected):
  folder = tmp_path / "ct"
  folder.mkdir()
  for k in (2, 0, 1):  # a negative SpacingBetweenSlices steps feet-wards
    write_slice(random_name(folder), np.full((2, 2), k), position=None,
                orientation=None, spacing=None, thickness=4.0,
                instance=k + 1, intercept=0.0, SpacingBetweenSlices=step)
  vol = one(folder)
  assert vol.spacing == pytest.approx((1.0, 1.0, 4.0))
  np.testing.assert_array_equal(vol.array[0, 0], expected)


def test_multi_frame_file_frames_are_placed_by_their_positions(tmp_path):
  z = [6.0, 0.0, 3.0]  # frame i at z[i]
  frames = np.stack([np.full((2, 3), v) for v in z]).astype(np.int16)
  per_frame = []
  for zi in z:
    item, position = Dataset(), Dataset()
    position.ImagePositionPatient = [0.0, 0.0, zi]
    item.PlanePositionSequence = [position]
    per_frame.append(item)
  shared, plane, measures = Dataset(), Dataset(), Dataset()
  plane.ImageOrientationPatient = list(AXIAL)
  measures.PixelSpacing = [0.8, 0.6]
  measures.SliceThickness = 3.0
  shared.PlaneOrientationSequence = [plane]
  shared.PixelMeasuresSequence = [measures]
  path = write_slice(tmp_path / "enhanced", frames, position=None,
                     orientation=None, spacing=None, thickness=None,
                     slope=None, intercept=None, sop=EnhancedMRImageStorage,
                     modality="MR", NumberOfFrames=3,
                     SharedFunctionalGroupsSequence=[shared],
                     PerFrameFunctionalGroupsSequence=per_frame)
  vol = one(path)
  assert vol.array.shape == (3, 2, 3)
  assert vol.spacing == pytest.approx((0.6, 0.8, 3.0))
  np.testing.assert_array_equal(vol.array[0, 0], [0.0, 3.0, 6.0])


# ----------------------------------------------------------- values


@pytest.mark.parametrize("slope,intercept", [(1.0, -1024.0), (2.0, -1000.0)])
def test_stored_values_become_hounsfield_units(tmp_path, slope, intercept):
  stored = np.arange(12).reshape(3, 4) * 100
  path = write_slice(tmp_path / "ct.dcm", stored, slope=slope,
                     intercept=intercept)
  vol = one(path)
  assert vol.array.dtype == np.float32
  expected = (stored * slope + intercept).T[::-1, ::-1]  # [x, y] = R, A
  np.testing.assert_array_equal(vol.array[:, :, 0], expected)


@pytest.mark.parametrize("name,modality,size",
                         [("CT_small.dcm", "CT", 128), ("MR_small.dcm", "MR",
                                                        64)])
def test_shared_ct_and_mr_load_as_single_slices(shared_data_dir, name,
                                                modality, size):
  path = shared_data_dir / "dicom" / name
  vol = one(path)
  assert vol.array.shape == (size, size, 1)  # axial: one slice along z
  assert vol.modality == modality
  ds = pydicom.dcmread(path)
  expected = apply_modality_lut(ds.pixel_array, ds).T[::-1, ::-1]
  np.testing.assert_array_equal(vol.array[:, :, 0], expected)
  if modality == "CT":
    assert -2000 <= vol.array.min() and vol.array.max() <= 4000
    assert vol.spacing == pytest.approx((0.661468, 0.661468, 5.0))


def test_two_patients_give_two_sorted_volumes(tmp_path):
  folder = tmp_path / "study"
  folder.mkdir()
  write_slice(random_name(folder), np.full((2, 2), 1), patient="zeta",
              series="1.2.3.1")
  write_slice(random_name(folder), np.full((3, 3), 2), patient="alpha",
              series="1.2.3.9")
  (folder / "notes.txt").write_text("not DICOM")
  volumes = read_dicom(folder)
  assert [(v.patient, v.series) for v in volumes] == [("alpha", "1.2.3.9"),
                                                      ("zeta", "1.2.3.1")]
  assert volumes[0].array.shape == (3, 3, 1)
  assert read_dicom(folder, "1.2.3.1")[0].patient == "zeta"


# ----------------------------------------------------------- refusals


def test_empty_and_non_dicom_folders_are_refused(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  message = raises_one_line(read_dicom, empty)
  assert str(empty) in message and "no files" in message
  other = tmp_path / "other"
  other.mkdir()
  (other / "a.txt").write_text("hello")
  (other / "b").write_bytes(bytes(300))
  (other / ".hidden").write_bytes(bytes(300))
  message = raises_one_line(read_dicom, other)
  assert str(other) in message and "none of its 2 files is DICOM" in message
  message = raises_one_line(read_dicom, other / "b")
  assert "not a DICOM file" in message
  message = raises_one_line(read_dicom, tmp_path / "absent")
  assert "no such file or folder" in message


def test_waveform_file_is_refused_and_skipped_in_a_folder(shared_data_dir,
                                                          tmp_path):
  ecg = shared_data_dir / "dicom" / "waveform_ecg.dcm"
  message = raises_one_line(read_dicom, ecg)
  assert message.startswith(f"{ecg}: is a DICOM 12-lead ECG waveform object")
  assert "not an image" in message and "12-lead ECG Waveform Storage" in message
  shutil.copy(ecg, tmp_path / "ecg")
  message = raises_one_line(read_dicom, tmp_path)
  assert str(tmp_path) in message and "1 waveform object" in message
  write_slice(tmp_path / "ct", np.zeros((2, 2)))
  assert one(tmp_path).modality == "CT"


def test_missing_pixel_data_is_refused(tmp_path):
  write_series(tmp_path / "ct", np.zeros((2, 3, 3)), [0.0, 1.0])
  path = write_slice(tmp_path / "ct" / "header_only", np.zeros((3, 3)),
                     position=(0.0, 0.0, 2.0), with_pixels=False)
  message = raises_one_line(read_dicom, tmp_path / "ct")
  assert message.startswith(f"{path}: has no pixel data")
  assert "PixelData element missing" in message


def test_colour_and_missing_series_uid_are_refused(tmp_path):
  path = write_slice(tmp_path / "rgb", np.zeros((2, 2)), SamplesPerPixel=3)
  message = raises_one_line(read_dicom, path)
  assert str(path) in message and "grayscale" in message
  path = write_slice(tmp_path / "nouid", np.zeros((2, 2)), series="")
  message = raises_one_line(read_dicom, path)
  assert str(path) in message and "SeriesInstanceUID" in message


def test_compressed_pixels_without_decoder_name_the_package(tmp_path):
  from pydicom.data import get_testdata_file
  source = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
  try:
    pydicom.dcmread(source).pixel_array
    pytest.skip("a JPEG-LS decoder is installed here")
  except RuntimeError:
    pass
  path = tmp_path / "mr_jls"
  shutil.copy(source, path)
  message = raises_one_line(read_dicom, path)
  assert message.startswith(f"{path}: no installed decoder")
  assert "JPEG-LS" in message and "pyjpegls" in message


def test_a_series_mixing_sizes_is_refused(tmp_path):
  folder = tmp_path / "ct"
  write_series(folder, np.zeros((2, 4, 4)), [0.0, 1.0])
  odd = write_slice(folder / "odd", np.zeros((2, 2)), position=(0, 0, 2.0))
  message = raises_one_line(read_dicom, folder)
  assert "mixes images of different size/orientation" in message
  assert "4x4 and 2x2" in message and str(odd) in message
  assert str(folder) in message and "--series" in message


@pytest.mark.parametrize("z", [[0.0, 3.0, 9.0, 12.0], [0.0, 3.0, 9.0]])
def test_a_missing_middle_slice_is_refused(tmp_path, z):
  paths = write_series(tmp_path / "ct", np.zeros((len(z), 2, 2)), z)
  message = raises_one_line(read_dicom, tmp_path / "ct")
  assert f"gap of 6.0 mm before {paths[2]}" in message
  assert message.startswith("series 1.2.826.0.1.3680043.8.498.1 in "
                            f"{tmp_path / 'ct'}: ")
  assert "steps 3.0 mm" in message and "missing slice" in message


def test_duplicate_positions_are_refused(tmp_path):
  paths = write_series(tmp_path / "ct", np.zeros((3, 2, 2)), [0.0, 1.0, 1.0])
  message = raises_one_line(read_dicom, tmp_path / "ct")
  assert "duplicate" in message
  assert str(paths[1]) in message and str(paths[2]) in message


def test_series_choice_unknown_uid_and_single(tmp_path):
  folder = tmp_path / "study"
  folder.mkdir()
  write_slice(random_name(folder), np.zeros((2, 2)), series="1.2.3.1")
  write_slice(random_name(folder), np.zeros((2, 2)), series="1.2.3.2",
              modality="MR")
  message = raises_one_line(read_dicom, folder, series="9.9")
  assert str(folder) in message and "no image series 9.9" in message
  assert "1.2.3.1 (CT, 1 slice)" in message and "1.2.3.2 (MR" in message
  message = raises_one_line(read_dicom, folder, series="single")
  assert "holds 2 series" in message and "--series UID" in message
  assert one(folder, series="1.2.3.2").modality == "MR"


def test_a_series_over_the_memory_limit_is_refused(tmp_path, monkeypatch):
  write_series(tmp_path / "ct", np.zeros((2, 8, 8)), [0.0, 1.0])
  monkeypatch.setattr(dicom_files, "memory_limit_bytes", lambda: 100)
  message = raises_one_line(read_dicom, tmp_path / "ct")
  assert "512 bytes as float32" in message and "100 bytes" in message


def test_missing_pydicom_is_a_config_error(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "pydicom", None)
  with pytest.raises(ConfigError, match=r"pip install 'medgen_jax\[imaging\]'"):
    read_dicom(tmp_path)
