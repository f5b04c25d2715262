"""CT/MR volumes as image datasets: orientation, windows, resampling,
patient splits, labels, NIfTI reading and writing (data/volume_datasets.py,
data/volumes.py, data/nifti_files.py)."""

import gzip
import io
import pathlib

import numpy as np
import pytest

from medgen_jax.configs import gan as gan_config
from medgen_jax.data import volume_datasets as vd
from medgen_jax.data.registry import dataset_names, load_dataset
from medgen_jax.data.volumes import Volume, canonical, cut, middle_slices
from medgen_jax.errors import ConfigError, DataError

nib = pytest.importorskip("nibabel")


def _config(name, **data):
  c = gan_config.get_config()
  c.data.name = name
  for k, v in data.items():
    c.data[k] = v
  return c.data


def _save(path, array, affine, descrip=b""):
  image = nib.Nifti1Image(np.asarray(array), np.asarray(affine, float))
  if descrip:
    image.header["descrip"] = descrip
  nib.save(image, str(path))
  return path


# -- orientation --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_canonical_matches_nibabel(seed):
  rng = np.random.default_rng(seed)
  array = rng.normal(size=(3, 4, 5)).astype(np.float32)
  perm = rng.permutation(3)
  rot = np.zeros((3, 3))
  rot[perm, np.arange(3)] = rng.choice([-1.0, 1.0], 3) * rng.uniform(0.5, 3, 3)
  affine = np.eye(4)
  affine[:3, :3] = rot
  affine[:3, 3] = rng.normal(size=3) * 10
  mine, spacing = canonical(array, affine)
  ref = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
  np.testing.assert_array_equal(mine, np.asarray(ref.dataobj))
  np.testing.assert_allclose(spacing, ref.header.get_zooms(), rtol=1e-6)


def test_planes_follow_the_radiological_convention():
  # A marker in the patient's right-anterior-superior corner of a canonical
  # [x(R), y(A), z(S)] volume is at the top-left of axial (A up, patient
  # right on the left), coronal (S up, right on the left) and sagittal (S up,
  # anterior on the left) slices.
  v = np.zeros((4, 5, 6), np.float32)
  v[3, 4, 5] = 1.0
  assert cut(v, "axial", 5)[0, 0] == 1.0
  assert cut(v, "coronal", 4)[0, 0] == 1.0
  assert cut(v, "sagittal", 3)[0, 0] == 1.0
  assert cut(v, "axial", 5).shape == (5, 4)      # rows y, cols x
  assert cut(v, "coronal", 4).shape == (6, 4)    # rows z, cols x
  assert cut(v, "sagittal", 3).shape == (6, 5)   # rows z, cols y
  panels = middle_slices(np.zeros((2, 4, 4, 4, 1)))
  assert [p.shape for p in panels] == [(2, 4, 4, 1)] * 3


def test_a_nifti_in_lps_order_reads_as_the_same_canonical_volume(tmp_path):
  rng = np.random.default_rng(0)
  ras = rng.integers(0, 1000, (6, 7, 8)).astype(np.int16)
  _save(tmp_path / "ras.nii.gz", ras, np.diag([1.0, 2.0, 3.0, 1.0]))
  # The same voxels stored with x and y reversed (L->R becomes R->L ...) and
  # an affine that says so.
  lps = ras[::-1, ::-1, :]
  affine = np.diag([-1.0, -2.0, 3.0, 1.0])
  affine[:3, 3] = [5.0, 12.0, 0.0]
  _save(tmp_path / "lps.nii", lps, affine)
  from medgen_jax.data.nifti_files import read_nifti
  a = read_nifti(tmp_path / "ras.nii.gz")
  b = read_nifti(tmp_path / "lps.nii")
  np.testing.assert_array_equal(a.array, b.array)
  assert a.spacing == b.spacing == (1.0, 2.0, 3.0)


# -- intensities -----------------------------------------------------------------


def _volume(array, modality="CT", patient="p", series="s", spacing=(1, 1, 1)):
  return Volume(array=np.asarray(array, np.float32), spacing=spacing,
                modality=modality, patient=patient, series=series,
                source=f"{patient}/{series}")


def test_hu_windows_map_centre_and_edges():
  v = _volume(np.array([-1350.0, -600.0, 150.0, 2000.0]).reshape(4, 1, 1))
  values, body = vd.normalise(v, vd.parse_window("lung"))
  np.testing.assert_allclose(values.ravel(), [0.0, 0.5, 1.0, 1.0], atol=1e-6)
  np.testing.assert_array_equal(body.ravel(), [False, False, True, True])
  values, _ = vd.normalise(v, vd.parse_window("-600,1500"))
  np.testing.assert_allclose(values.ravel(), [0.0, 0.5, 1.0, 1.0], atol=1e-6)
  # auto = the soft-tissue window (40, 400) for CT: 40 HU -> 0.5.
  values, _ = vd.normalise(_volume(np.full((2, 2, 2), 40.0)), ("auto", None))
  np.testing.assert_allclose(values, 0.5)


def test_mr_is_normalised_by_robust_percentiles_and_refuses_hu_windows():
  rng = np.random.default_rng(1)
  a = rng.uniform(0, 1000, (20, 20, 20))
  v = _volume(a, modality="MR")
  values, _ = vd.normalise(v, ("auto", None))
  lo, hi = np.percentile(a, vd.PERCENTILES)
  np.testing.assert_allclose(values, np.clip((a - lo) / (hi - lo), 0, 1),
                             atol=1e-5)
  with pytest.raises(ConfigError, match="MR series.*--window percentile"):
    vd.normalise(v, vd.parse_window("brain"))


@pytest.mark.parametrize("bad", ["lungs", "10", "10,0", "a,b"])
def test_bad_windows_are_refused(bad):
  with pytest.raises(ConfigError, match="--window"):
    vd.parse_window(bad)


# -- resampling and examples ----------------------------------------------------


def test_slices_keep_the_physical_aspect_ratio():
  # A disc of radius 20 mm on a grid of 2 mm rows x 1 mm columns: resampled,
  # it must be round (as many pixels tall as wide), centred.
  y, x = np.mgrid[0:40, 0:80]
  rows_mm, cols_mm = (y - 19.5) * 2.0, (x - 39.5) * 1.0
  disc = (rows_mm ** 2 + cols_mm ** 2 <= 20.0 ** 2).astype(np.float32)
  # axial rows are y (spacing sy), columns x (sx): canonical [x, y, 1]
  volume = _volume(disc[::-1, ::-1].T[:, :, None] * 1000.0,
                   spacing=(1.0, 2.0, 5.0))
  values, body = vd.normalise(volume, vd.parse_window("500,1000"))
  opts = {"plane": "axial", "size": 32, "stride": 1, "min_body": 0.0}
  (image,) = vd.slices(volume, values, body, opts)
  mask = image > 0.5
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
  assert abs(height - width) <= 1, (height, width)
  assert abs(width - 16) <= 1  # 40 mm of an 80 mm field of view in 32 px
  assert abs((rows[0] + rows[-1]) / 2 - 15.5) <= 1


def test_slices_outside_the_body_are_skipped():
  a = np.full((8, 8, 10), -1000.0)  # air
  a[2:6, 2:6, 3:7] = 40.0          # body on slices 3..6
  v = _volume(a)
  values, body = vd.normalise(v, ("auto", None))
  opts = {"plane": "axial", "size": 8, "stride": 1, "min_body": 0.1}
  assert len(vd.slices(v, values, body, opts)) == 4
  opts["stride"] = 2
  assert len(vd.slices(v, values, body, opts)) == 2  # slices 4, 6


def test_cubes_fit_whole_volumes_or_cut_patches():
  a = np.full((20, 30, 40), 40.0)
  v = _volume(a, spacing=(2.0, 2.0, 1.0))  # 40 x 60 x 40 mm
  values, body = vd.normalise(v, ("auto", None))
  opts = {"volume": 8, "volume_spacing": 0.0, "patch_stride": 0,
          "min_body": 0.0}
  cube, voxel = vd.cubes(v, values, body, opts)
  assert cube.shape == (1, 8, 8, 8) and voxel == pytest.approx(60 / 8)
  opts.update(volume_spacing=5.0)  # 8 x 12 x 8 voxels of 5 mm
  patches, voxel = vd.cubes(v, values, body, opts)
  # x: starts 0 (8 fits exactly); y: 0, 4 (stride 4, end at 12 - 8 = 4); z: 0
  assert patches.shape == (2, 8, 8, 8) and voxel == 5.0


# -- splits and labels --------------------------------------------------------------


def test_split_groups_is_disjoint_complete_and_seeded():
  groups = [f"p{i}" for i in range(20)]
  s = vd.split_groups(groups, 0.15, 0.15, seed=3)
  assert sorted(s["train"] + s["val"] + s["test"]) == sorted(groups)
  assert len(s["test"]) == 3 and len(s["val"]) == 3
  assert s == vd.split_groups(groups[::-1], 0.15, 0.15, seed=3)
  assert s != vd.split_groups(groups, 0.15, 0.15, seed=4)
  assert vd.split_groups(["a", "b"], 0.15, 0.15, 0) == {
      "test": [], "val": [], "train": ["a", "b"]}
  small = vd.split_groups(["a", "b", "c"], 0.15, 0.15, 0)
  assert len(small["test"]) == 1 and len(small["train"]) == 2


def _patients(tmp_path, n=6, depth=6):
  """n NIfTI files, one patient each, with a constant value per patient."""
  folder = tmp_path / "brains"
  folder.mkdir()
  for i in range(n):
    a = np.zeros((16, 16, depth), np.float32)
    a[2:14, 2:14, :] = 100.0 * (i + 1)
    a[0, 0, 0] = 1.0  # keeps the percentiles apart from a constant volume
    _save(folder / f"patient{i}.nii.gz", a, np.diag([1.0, 1.0, 2.0, 1.0]))
  return folder


def test_nifti_folder_splits_by_patient_and_reads_labels(tmp_path):
  folder = _patients(tmp_path)
  labels = tmp_path / "labels.csv"
  labels.write_text("file,diagnosis\n" + "".join(
      f"patient{i}.nii.gz,{'tumour' if i % 2 else 'normal'}\n"
      for i in range(6)))
  ds = load_dataset(_config(f"nifti:{folder}", image_size=16,
                            labels=str(labels), window="percentile"))
  groups = ds.metadata["groups"]
  assert set(groups) == {"train", "val", "test"}
  seen = [g for s in groups.values() for g in s]
  assert sorted(seen) == [f"patient{i}.nii.gz" for i in range(6)]
  assert ds.class_names == ("normal", "tumour")
  for name, split in ds.splits.items():
    assert len(split) == 6 * len(groups[name])  # every slice of each volume
    want = sorted(int(g[len("patient")]) % 2 for g in groups[name])
    got = sorted(set(split["label"].tolist()))
    assert got == sorted(set(want))


def test_labels_must_cover_every_patient(tmp_path):
  folder = _patients(tmp_path, n=3)
  labels = tmp_path / "labels.csv"
  labels.write_text("id,label\npatient0.nii.gz,a\n")
  with pytest.raises(DataError, match="no label for 2 of 3 volumes"):
    load_dataset(_config(f"nifti:{folder}", image_size=16,
                         labels=str(labels)))


def test_volume_dataset_is_3d_with_voxel_spacing(tmp_path):
  folder = _patients(tmp_path, n=3, depth=8)
  ds = load_dataset(_config(f"nifti:{folder}", volume=8))
  assert ds.example_shape("image") == (8, 8, 8, 1)
  assert ds.metadata["voxel_spacing"] == pytest.approx(16 / 8)


# -- errors, registry, writing ---------------------------------------------------------


def test_nifti_errors_name_the_file(tmp_path):
  bad = tmp_path / "broken.nii.gz"
  bad.write_bytes(b"not a nifti at all")
  with pytest.raises(DataError, match="broken.nii.gz: unreadable NIfTI header"):
    load_dataset(_config(f"nifti:{bad}"))
  half = tmp_path / "half.nii"
  _save(half, np.zeros((8, 8, 8), np.float32), np.eye(4))
  half.write_bytes(half.read_bytes()[:200])
  with pytest.raises(DataError, match="half.nii: unreadable NIfTI header"):
    load_dataset(_config(f"nifti:{half}"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(DataError, match="empty: the folder holds no .nii"):
    load_dataset(_config(f"nifti:{empty}"))
  with pytest.raises(DataError, match="nope: no such file"):
    load_dataset(_config(f"nifti:{tmp_path / 'nope'}"))
  five = tmp_path / "five.nii"
  _save(five, np.zeros((4, 4, 4, 2, 2), np.float32), np.eye(4))
  with pytest.raises(DataError, match=r"five.nii: image of shape \(4, 4, 4, "
                     r"2, 2\); expected a 3-D volume"):
    load_dataset(_config(f"nifti:{five}"))


def test_prefixes_are_listed_and_a_nii_path_loads(tmp_path):
  names = dataset_names()
  assert "dicom:NAME" in names and "nifti:NAME" in names
  path = _save(tmp_path / "one.nii.gz",
               np.pad(np.full((6, 6, 4), 50.0, np.float32), 1), np.eye(4))
  ds = load_dataset(_config(str(path), image_size=8))
  assert ds.example_shape("image") == (8, 8, 1)


def test_generated_volumes_write_as_nifti_that_nibabel_reads(tmp_path):
  from medgen_jax.data.nifti_files import nifti_bytes
  rng = np.random.default_rng(0)
  volumes = rng.integers(0, 256, (3, 8, 8, 8, 1)).astype(np.uint8)
  path = tmp_path / "samples.nii.gz"
  path.write_bytes(nifti_bytes(volumes, 2.5))
  image = nib.load(str(path))
  assert image.shape == (8, 8, 8, 3)
  np.testing.assert_allclose(image.affine, np.diag([2.5, 2.5, 2.5, 1.0]))
  np.testing.assert_array_equal(np.asarray(image.dataobj)[..., 1],
                                volumes[1, ..., 0])
  raw = nifti_bytes(volumes, 2.5, compress=False)
  assert gzip.decompress(path.read_bytes()) == raw
  with pytest.raises(ConfigError, match="writes 3-D volumes"):
    nifti_bytes(volumes[:, :, :, 0], 1.0)
