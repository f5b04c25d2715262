"""The image families on CT/MR volumes: 2-D slices and 3-D volumes through
`medgen train gan|vae`, sample grids of middle slices, and `medgen sample
--out FILE.nii.gz` read back with nibabel."""

import json

import numpy as np
import pytest
from PIL import Image

nib = pytest.importorskip("nibabel")

TINY = ["--steps", "2", "--batch-size", "2", "--num-devices", "1", "--set", "train.eval_every=2",
        "--set", "train.checkpoint_every=2", "--set", "train.num_samples=4",
        "--set", "train.progress=False"]


def _patients(folder, n=4, size=12):
  """n synthetic heads (a bright ball in a dimmer one), one file each."""
  folder.mkdir()
  grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1)
  r = np.linalg.norm(grid - (size - 1) / 2, axis=-1)
  for i in range(n):
    a = np.where(r < size * 0.45, 300.0, 0.0) + np.where(r < size * 0.2,
                                                        400.0 + 50 * i, 0.0)
    nib.save(nib.Nifti1Image(a.astype(np.float32),
                             np.diag([1.5, 1.5, 1.5, 1.0])),
             str(folder / f"p{i}.nii.gz"))
  return folder


@pytest.fixture(scope="module")
def volume_folder(tmp_path_factory):
  return _patients(tmp_path_factory.mktemp("volumes") / "heads")


def test_3d_gan_trains_draws_middle_slices_and_writes_nifti(
    volume_folder, tmp_path, medgen):
  run = tmp_path / "gan3d"
  code, out, err = medgen(["train", "gan", "--data", f"nifti:{volume_folder}",
                           "--volume", "8", "--width", "4", "--latent-dim",
                           "8", "--workdir", run, *TINY])
  assert code == 0, err
  config = json.loads((run / "config.json").read_text())
  assert config["data"]["voxel_spacing"] == pytest.approx(12 * 1.5 / 8)
  (grid,) = sorted((run / "samples").glob("*.png"))
  picture = np.asarray(Image.open(grid))
  # 4 volumes in 1 column (round(sqrt(4 / 3))), each 3 panels of 8 pixels
  # and 2 one-pixel gaps: a 30 x 42 grid with its border, scaled by 512 // 30.
  assert picture.shape[:2] == (42 * 17, 30 * 17)
  out_file = tmp_path / "samples.nii.gz"
  code, out, err = medgen(["sample", "--workdir", run, "--n", "3", "--out",
                           out_file])
  assert code == 0, err
  image = nib.load(str(out_file))
  assert image.shape == (8, 8, 8, 3)
  np.testing.assert_allclose(np.diag(image.affine)[:3], [2.25] * 3)
  data = np.asarray(image.dataobj)
  assert data.dtype == np.uint8 and data.std() > 0


def test_2d_runs_refuse_nifti_samples_and_3d_needs_volumes(tmp_path, medgen,
                                                           volume_folder):
  run = tmp_path / "gan2d"
  code, _, err = medgen(["train", "gan", "--data", f"nifti:{volume_folder}",
                         "--image-size", "8", "--width", "4", "--workdir",
                         run, *TINY])
  assert code == 0, err
  code, _, err = medgen(["sample", "--workdir", run, "--out",
                         tmp_path / "x.nii.gz"])
  assert code != 0 and "writes 3-D volumes" in err
  code, _, err = medgen(["train", "gan", "--data", "phantoms", "--volume",
                         "8", "--workdir", tmp_path / "bad", *TINY])
  assert code != 0 and "holds 2-D images" in err and "--volume" in err
  code, _, err = medgen(["train", "gan", "--data", f"nifti:{volume_folder}",
                         "--volume", "9", "--workdir", tmp_path / "bad2",
                         *TINY])
  assert code != 0 and "--volume: volume size 9" in err


def test_3d_vae_learns_the_volumes(volume_folder, tmp_path):
  from medgen_jax.configs import vae as vae_config
  from medgen_jax.train.loop import train_and_evaluate
  c = vae_config.get_config()
  c.data.name = f"nifti:{volume_folder}"
  c.data.volume = 8
  c.data.val_fraction = 0.0
  c.data.test_fraction = 0.25
  c.vae.width = 4
  c.vae.latent_dim = 4
  c.train.batch_size = 3
  c.train.steps = 60
  c.train.eval_every = 60
  c.train.log_every = 10
  c.train.checkpoint_every = 60
  c.train.num_samples = 4
  c.train.progress = False
  c.train.num_devices = 1
  c.optimizer.learning_rate = 3e-3
  train_and_evaluate(c, tmp_path / "vae3d")
  log = [json.loads(line) for line in
         (tmp_path / "vae3d" / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in log if "loss" in r]
  assert losses[-1] < 0.7 * losses[0], losses
  assert any(k.startswith("eval/test_") for r in log for k in r)
  assert list((tmp_path / "vae3d" / "samples").glob("*.png"))


def test_shared_ct_slice_and_negative_windows(shared_data_dir, tmp_path,
                                              medgen):
  from medgen_jax.configs import gan as gan_config
  from medgen_jax.data.registry import load_dataset
  c = gan_config.get_config()
  c.data.name = f"dicom:{shared_data_dir / 'dicom' / 'CT_small.dcm'}"
  c.data.image_size = 64
  c.data.window = "-600,1500"
  ds = load_dataset(c.data)
  assert ds.example_shape("image") == (64, 64, 1) and len(ds.split("train")) == 1
  assert ds.class_names == ("CT",)
  # "-600,1500" after --window is the window, not a flag; on an MR series
  # an HU window is refused in one line.
  code, _, err = medgen(["train", "gan", "--data",
                         f"dicom:{shared_data_dir / 'dicom' / 'MR_small.dcm'}",
                         "--window", "-600,1500", "--workdir", tmp_path / "r",
                         *TINY])
  assert code == 2 and "Hounsfield units for an MR series" in err
