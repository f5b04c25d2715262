"""The image report (`medgen evaluate` for GAN / image VAE): real held-out
images as "samples" sit at the Fréchet floor and look un-copied, copies of
training images are flagged, noise is far from the floor; the CLI writes
report.json / report.md / PNGs and refuses a wrong extractor in one line."""

import json

import numpy as np
import pytest

from medgen_jax.configs import classifier as classifier_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError
from medgen_jax.families import _image_report
from medgen_jax.train.loop import train_and_evaluate
from medgen_jax.train.task import ReportContext

SIZE = 16


def _classifier_config():
  c = classifier_config.get_config()
  c.data.image_size = SIZE
  c.data.phantoms.num_train = 1024
  c.data.phantoms.num_val = 256
  c.data.phantoms.num_test = 256
  c.classifier.width = 8
  c.classifier.feature_dim = 16
  c.optimizer.learning_rate = 3e-3
  c.train.batch_size = 32
  c.train.steps = 60
  c.train.log_every = 30
  c.train.eval_every = 60
  c.train.checkpoint_every = 60
  c.train.num_devices = 1
  c.train.progress = False
  return c


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("extractor") / "run"
  config = _classifier_config()
  train_and_evaluate(config, workdir)
  return workdir, load_dataset(config.data)


class _Pool:
  """A 'generator' that hands out the images of a pool in order."""

  def __init__(self, images):
    self.images, self.next = images, 0

  def __call__(self, z, labels):
    n = len(z)
    idx = (self.next + np.arange(n)) % len(self.images)
    self.next += n
    return self.images[idx]


def _report(pool_images, extractor, n=256):
  workdir, dataset = extractor
  model = _image_report.ImageModel(decode=_Pool(pool_images), latent_dim=4)
  return _image_report.image_report(
      model, dataset, ReportContext(step=0, n=n, seed=0,
                                    options={"extractor": str(workdir)}))


def test_new_real_images_score_at_the_floor(extractor):
  _, dataset = extractor
  r = _report(dataset.split("val")["image"], extractor)
  assert 0.5 < r.scalars["fd_ratio"] < 2.0
  assert r.scalars["precision"] > 0.8 and r.scalars["recall"] > 0.8
  assert 0.35 < r.scalars["memorisation_pixels/p_fake_closer"] < 0.65
  assert r.scalars["class_mix/max_gap_vs_real_classifier"] < 0.1
  assert r.facts["extractor_hash"] and r.facts["generated"] == 256
  assert {"real_vs_generated", "nearest_training_images",
          "latent_direction"} <= set(r.images)


def test_copies_of_training_images_are_flagged(extractor):
  _, dataset = extractor
  r = _report(dataset.split("train")["image"], extractor)
  assert r.scalars["memorisation_pixels/p_fake_closer"] == 1.0
  assert r.scalars["memorisation_pixels/fake_below_held_out_q01"] == 1.0


def test_noise_is_far_from_the_floor(extractor):
  _, dataset = extractor
  shape = dataset.split("val")["image"].shape
  noise = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  r = _report(noise, extractor)
  assert r.scalars["fd_ratio"] > 20
  assert r.scalars["memorisation_pixels/p_fake_closer"] < 0.05


def test_class_counts_follow_the_prior():
  np.testing.assert_array_equal(_image_report.class_counts([3, 1], 10), [8, 2])
  np.testing.assert_array_equal(_image_report.class_counts([1, 1, 1], 4),
                                [2, 1, 1])
  assert _image_report.class_counts([0.37, 0.63], 624).sum() == 624


def test_evaluate_cli_writes_the_report(tiny_gan_run, extractor, medgen,
                                        tmp_path):
  gan_dir = tiny_gan_run["workdir"]
  out = tmp_path / "report"
  code, stdout, err = medgen(["evaluate", "--workdir", gan_dir, "--n", "64",
                              "--extractor", extractor[0], "--out", out])
  assert code == 0, err
  obj = json.loads((out / "report.json").read_text())
  assert obj["facts"]["family"] == "gan" and obj["facts"]["generated"] == 64
  assert obj["scalars"]["fd"] > 0 and "fd_floor" in obj["scalars"]
  for name in obj["pictures"]:
    assert (out / name).is_file()
  assert "critic_attributions.png" in obj["pictures"]
  assert "## Class mix" in (out / "report.md").read_text()
  assert "report.md" in stdout


def test_evaluate_cli_errors_are_one_line(tiny_gan_run, medgen, tmp_path):
  gan_dir = tiny_gan_run["workdir"]
  code, _, err = medgen(["evaluate", "--workdir", gan_dir, "--extractor",
                         gan_dir, "--out", tmp_path / "r"])
  assert code == 2 and err.count("\n") == 1
  assert "expected a classifier run" in err
  (tmp_path / "file").write_text("x")
  code, _, err = medgen(["evaluate", "--workdir", gan_dir, "--out",
                         tmp_path / "file"])
  assert code == 2 and "is a file" in err
  assert not (tmp_path / "r").exists()


def test_a_family_without_its_own_report_uses_its_evaluation(extractor,
                                                              medgen,
                                                              tmp_path):
  code, stdout, err = medgen(["evaluate", "--workdir", extractor[0], "--out",
                              tmp_path / "r"])
  assert code == 0, err
  obj = json.loads((tmp_path / "r" / "report.json").read_text())
  assert 0.0 <= obj["scalars"]["eval/test_accuracy"] <= 1.0
  assert not any(k.startswith("eval/val_") for k in obj["scalars"])
  assert (tmp_path / "r" / "attributions.png").is_file()
  assert "completeness gap" in (tmp_path / "r" / "report.md").read_text()


def test_vae_report_has_its_bound_and_the_image_sections(extractor, medgen,
                                                         tmp_path):
  from medgen_jax.configs import vae as vae_config
  c = vae_config.get_config()
  c.data.image_size = SIZE
  c.data.phantoms.num_train = 256
  c.data.phantoms.num_val = 64
  c.data.phantoms.num_test = 64
  c.vae.width = 8
  c.vae.iwae_samples = 4
  c.train.steps = 4
  c.train.eval_every = 4
  c.train.checkpoint_every = 4
  c.train.num_devices = 1
  c.train.progress = False
  train_and_evaluate(c, tmp_path / "vae")
  code, _, err = medgen(["evaluate", "--workdir", tmp_path / "vae",
                         "--extractor", extractor[0], "--out", tmp_path / "r"])
  assert code == 0, err
  obj = json.loads((tmp_path / "r" / "report.json").read_text())
  assert np.isfinite(obj["scalars"]["eval/test_bits_per_dim"])
  assert obj["facts"]["generated"] == 64 and "fd_ratio" in obj["scalars"]
  assert "nearest_training_images.png" in obj["pictures"]


def test_gaussian_blur_matches_scipy():
  from scipy.ndimage import gaussian_filter
  x = np.random.default_rng(0).integers(0, 256, (3, 12, 10, 1), np.uint8)
  got = _image_report.gaussian_blur(x, 1.0)
  want = np.stack([gaussian_filter(im[..., 0].astype(float), 1.0,
                                   mode="nearest", truncate=3.0)
                   for im in x])[..., None]
  assert np.max(np.abs(got.astype(int) - np.round(want))) <= 1
  flat = np.full((1, 8, 8, 1), 77, np.uint8)
  np.testing.assert_array_equal(_image_report.gaussian_blur(flat, 0.5), flat)


def test_share_gap_standard_error_is_binomial():
  # 0.2 of 10000 against 0.25 of 500: sqrt(.16/10000 + .1875/500).
  got = _image_report.share_gap_se(0.2, 10000, 0.25, 500)
  assert abs(got - np.sqrt(0.16e-4 + 0.1875 / 500)) < 1e-12


def test_class_mix_uses_its_own_samples(extractor):
  # The pool hands out val images in order; 1000 mix draws cycle through
  # them, so the mix is the val split's own, over 1000 samples, whatever
  # the 64 scored samples are.
  workdir, dataset = extractor
  val = dataset.split("val")["image"]
  model = _image_report.ImageModel(decode=_Pool(val), latent_dim=4)
  r = _image_report.image_report(model, dataset, ReportContext(
      step=0, n=64, seed=0, options={"extractor": str(workdir),
                                     "mix_samples": 1000}))
  assert r.facts["class_mix_samples"] == 1000
  assert r.scalars["class_mix/max_gap_vs_real_classifier"] < 0.05
  assert 0 < r.scalars["class_mix/max_gap_standard_error"] < 0.1
  with pytest.raises(ConfigError, match="--mix-samples must be a positive"):
    _image_report.image_report(model, dataset, ReportContext(
        step=0, n=64, seed=0, options={"extractor": str(workdir),
                                       "mix_samples": 0}))
