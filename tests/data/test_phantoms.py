"""Tests of the embedded phantom dataset (medgen_jax/data/phantoms.py)."""

import importlib.util

import ml_collections
import numpy as np
import pytest

from medgen_jax.configs import gan
from medgen_jax.data import phantoms
from medgen_jax.data.phantoms import gaussian_blur, generate_phantoms
from medgen_jax.errors import ConfigError


def _gen(n, size, seed, noise_std=0.0, blur_sigma=0.0, lesion_prob=0.5):
  return generate_phantoms(n, size, np.random.default_rng(seed),
                           noise_std=noise_std, blur_sigma=blur_sigma,
                           lesion_prob=lesion_prob)


def _data_config(**phantom_options):
  """The default `data` section, small, with phantom options overridden."""
  cfg = gan.get_config().data
  cfg.phantoms.num_train = 64
  cfg.phantoms.num_val = 16
  cfg.phantoms.num_test = 16
  for key, value in phantom_options.items():
    cfg.phantoms[key] = value
  return cfg


def _pixel_grid(size):
  """Pixel-centre coordinates in [-1, 1], float [size]."""
  return -1.0 + (np.arange(size) + 0.5) * 2.0 / size


def _total_variation(images):
  """Anisotropic total variation per image, [n, h, w] -> [n]."""
  return (np.abs(np.diff(images, axis=1)).sum((1, 2))
          + np.abs(np.diff(images, axis=2)).sum((1, 2)))


# --- the generator ----------------------------------------------------------


@pytest.mark.parametrize("size", [16, 28, 64])
def test_shapes_dtypes_and_range(size):
  images, labels = _gen(24, size, seed=0, noise_std=0.05, blur_sigma=0.7)
  assert images.shape == (24, size, size) and images.dtype == np.float32
  assert labels.shape == (24,) and labels.dtype == np.int32
  assert images.min() >= 0.0 and images.max() <= 1.0
  assert set(np.unique(labels)) <= {0, 1}
  # A phantom, not a blank or saturated frame: dark corners (air), bright
  # ring (skull), tissue in the middle.
  corner = images[:, :size // 8, :size // 8]
  assert corner.mean() < 0.1
  assert images.max(axis=(1, 2)).min() > 0.5
  centre = images[:, size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1]
  assert 0.05 < np.median(centre) < 0.6


def test_same_seed_same_images_and_different_seed_differs():
  a, la = _gen(16, 28, seed=3, noise_std=0.02, blur_sigma=0.5)
  b, lb = _gen(16, 28, seed=3, noise_std=0.02, blur_sigma=0.5)
  c, _ = _gen(16, 28, seed=4, noise_std=0.02, blur_sigma=0.5)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(la, lb)
  assert np.abs(a - c).mean() > 0.01


def test_geometry_is_resolution_independent():
  # Same seed at 64 and 32 pixels: the same scene, so the 64-pixel image
  # averaged over 2x2 blocks matches the 32-pixel one (partial volume).
  fine, fine_labels = _gen(40, 64, seed=5)
  coarse, coarse_labels = _gen(40, 32, seed=5)
  np.testing.assert_array_equal(fine_labels, coarse_labels)
  pooled = fine.reshape(40, 32, 2, 32, 2).mean(axis=(2, 4))
  assert np.abs(pooled - coarse).mean() < 0.01


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_label_frequency_matches_lesion_prob(p):
  n = 2000
  _, labels = _gen(n, 8, seed=11, lesion_prob=p)
  bound = 4.0 * np.sqrt(p * (1.0 - p) / n)
  assert abs(labels.mean() - p) <= bound


def test_lesion_is_a_small_bright_blob_inside_the_body():
  # Equal seeds draw equal geometry; lesion_prob 0 vs 1 differ only by the
  # lesion, which must add intensity in a small region inside the body.
  size, n = 32, 200
  without, _ = _gen(n, size, seed=7, lesion_prob=0.0)
  with_lesion, labels = _gen(n, size, seed=7, lesion_prob=1.0)
  assert labels.all()
  diff = with_lesion - without  # [n, h, w]
  assert diff.min() >= 0.0
  assert (diff.max(axis=(1, 2)) > 0.2).all()  # every lesion is visible
  assert (diff > 0).mean(axis=(1, 2)).max() < 0.03  # and small
  # Inside the body: in its row and column there is body on both sides (air
  # is exactly 0 here; the bright ring or denser tissue is well above 0.3).
  skull = without > 0.3
  left = np.maximum.accumulate(skull, axis=2)
  right = np.maximum.accumulate(skull[:, :, ::-1], axis=2)[:, :, ::-1]
  above = np.maximum.accumulate(skull, axis=1)
  below = np.maximum.accumulate(skull[:, ::-1], axis=1)[:, ::-1]
  lesion = diff > 0
  assert (left & right & above & below)[lesion].all()
  assert without[lesion].max() < 0.8  # soft tissue, never the skull ring


def test_lesion_images_are_brighter_inside_the_tissue():
  size = 32
  images, labels = _gen(600, size, seed=1, lesion_prob=0.5)
  g = _pixel_grid(size)
  tissue = g[:, None] ** 2 + g[None, :] ** 2 < 0.5 ** 2  # well inside skull
  peak = images[:, tissue].max(axis=1)  # [n]
  assert peak[labels == 1].mean() > peak[labels == 0].mean() + 0.2
  # A threshold on the peak alone already classifies most slices.
  assert ((peak > 0.5) == (labels == 1)).mean() > 0.9


def test_noise_has_the_requested_std():
  sigma = 0.03
  clean, _ = _gen(64, 32, seed=2, noise_std=0.0)
  noisy, _ = _gen(64, 32, seed=2, noise_std=sigma)
  # Away from the clip bounds the residual is exactly the added noise.
  mid = (clean > 0.2) & (clean < 0.8)
  residual = (noisy - clean)[mid]
  assert residual.size > 10000
  assert abs(residual.std() - sigma) < 0.05 * sigma
  assert abs(residual.mean()) < 0.05 * sigma
  # In the air around the body (0 before noise) the noise is clipped at 0: a
  # rectified Gaussian, half zeros, mean sigma / sqrt(2 pi).
  air = noisy[clean == 0.0]
  assert air.size > 10000
  assert abs((air == 0.0).mean() - 0.5) < 0.02
  assert abs(air.mean() - sigma / np.sqrt(2 * np.pi)) < 0.05 * sigma
  # Without noise the air is exactly 0.
  assert clean[:, :2, :2].max() == 0.0


def test_blur_smooths_and_conserves_intensity():
  sharp, _ = _gen(32, 32, seed=9)
  blurred, _ = _gen(32, 32, seed=9, blur_sigma=1.0)
  assert (_total_variation(blurred) < 0.8 * _total_variation(sharp)).all()
  # The body sits in dark air, so a normalised blur keeps the total.
  np.testing.assert_allclose(blurred.sum((1, 2)), sharp.sum((1, 2)),
                             rtol=1e-4)


@pytest.mark.parametrize("sigma", [0.5, 1.3, 3.0])
def test_blur_matches_scipy(sigma):
  ndimage = pytest.importorskip("scipy.ndimage")
  x = np.random.default_rng(0).uniform(size=(3, 20, 17)).astype(np.float32)
  expected = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="reflect")
  np.testing.assert_allclose(gaussian_blur(x, sigma), expected, atol=1e-5)


def test_generator_rejects_bad_arguments():
  with pytest.raises(ValueError):
    _gen(4, 7, seed=0)
  with pytest.raises(ValueError):
    _gen(4, 16, seed=0, lesion_prob=1.5)
  with pytest.raises(ValueError):
    _gen(4, 16, seed=0, noise_std=-0.1)


# --- the registered loader --------------------------------------------------


def test_loader_builds_independent_deterministic_splits():
  ds = phantoms.load_phantoms(_data_config())
  assert ds.name == "phantoms" and ds.num_classes == 2
  assert ds.class_names == ("no_lesion", "lesion")
  assert "seed=0" in ds.source
  assert {k: len(s) for k, s in ds.splits.items()} == {
      "train": 64, "val": 16, "test": 16}
  assert ds.modality == "image" and ds.keys == ("image", "label")
  assert ds.metadata["image_shape"] == ds.example_shape("image") == (28, 28, 1)
  for split in ds.splits.values():
    assert split["image"].dtype == np.uint8 and split["image"].shape[1:] == (
        28, 28, 1)
    assert split["label"].dtype == np.int32
  # Same config -> the same bytes; splits are distinct streams.
  again = phantoms.load_phantoms(_data_config())
  for k in ds.splits:
    for key in ("image", "label"):
      np.testing.assert_array_equal(ds.splits[k][key], again.splits[k][key])
  assert not np.array_equal(ds.splits["train"]["image"][:16],
                            ds.splits["val"]["image"])
  # Another data seed -> other images.
  cfg = _data_config()
  cfg.seed = 1
  other = phantoms.load_phantoms(cfg)
  assert not np.array_equal(other.splits["train"]["image"],
                            ds.splits["train"]["image"])
  # A split's stream does not depend on the size of the others.
  cfg = _data_config(num_train=32)
  smaller = phantoms.load_phantoms(cfg)
  np.testing.assert_array_equal(smaller.splits["val"]["image"],
                                ds.splits["val"]["image"])


def test_empty_val_and_test_are_left_out():
  ds = phantoms.load_phantoms(_data_config(num_val=0, num_test=0))
  assert set(ds.splits) == {"train"}


@pytest.mark.parametrize("option, value", [
    ("num_train", 0),
    ("num_val", -1),
    ("num_test", -5),
    ("noise_std", -0.01),
    ("noise_std", float("nan")),
    ("blur_sigma", -1.0),
    ("lesion_prob", 1.5),
    ("lesion_prob", -0.1),
])
def test_bad_option_raises_config_error_naming_it(option, value):
  with pytest.raises(ConfigError, match=f"data.phantoms.{option}"):
    phantoms.load_phantoms(_data_config(**{option: value}))


def test_bad_image_size_and_seed_raise_config_error():
  cfg = _data_config()
  cfg.image_size = 7
  with pytest.raises(ConfigError, match="image.size"):
    phantoms.load_phantoms(cfg)
  cfg = _data_config()
  cfg.seed = -1
  with pytest.raises(ConfigError, match="data.seed"):
    phantoms.load_phantoms(cfg)


def test_default_config_through_the_registry():
  if importlib.util.find_spec("medgen_jax.data.medmnist") is None:
    pytest.skip("medgen_jax.data.medmnist (imported by the registry) is "
                "not written yet")
  from medgen_jax.data.registry import dataset_names, load_dataset
  assert "phantoms" in dataset_names()
  cfg = gan.get_config().data
  assert cfg.name == "phantoms"
  ds = load_dataset(cfg)
  assert ds.name == "phantoms" and ds.example_shape("image") == (28, 28, 1)
  assert {k: len(s) for k, s in ds.splits.items()} == {
      "train": 4096, "val": 512, "test": 512}
  labels = ds.splits["train"]["label"]
  assert abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / 4096)


def test_huge_seed_is_accepted():
  cfg = _data_config(num_train=4, num_val=0, num_test=0)
  cfg.seed = 2**40
  ds = phantoms.load_phantoms(cfg)
  assert "seed=1099511627776" in ds.source and len(ds.split("train")) == 4


@pytest.mark.parametrize("seed", [1.5, "0", True, float("inf")])
def test_non_integer_seed_is_a_config_error(seed):
  # A config read from JSON is not type-checked like a fresh one.
  cfg = ml_collections.ConfigDict(_data_config().to_dict(), type_safe=False)
  cfg.seed = seed
  with pytest.raises(ConfigError, match="data.seed"):
    phantoms.load_phantoms(cfg)


def test_a_data_section_without_image_fields_is_a_config_error():
  # The `data` section of a family that has no image fields.
  cfg = ml_collections.ConfigDict({"name": "phantoms", "data_dir": "",
                                   "download": True, "seed": 0})
  with pytest.raises(ConfigError) as err:
    phantoms.load_phantoms(cfg)
  msg = str(err.value)
  assert msg == ("dataset 'phantoms' is an image dataset and needs "
                 "data.image_size; train it with an image family such as "
                 "`medgen train gan`")
  cfg.image_size = 28
  with pytest.raises(ConfigError, match="needs data.phantoms; train it with"):
    phantoms.load_phantoms(cfg)


def test_generation_that_would_exhaust_memory_is_refused_first(monkeypatch):
  monkeypatch.setattr(phantoms, "memory_limit_bytes", lambda: 2**30)  # 1 GiB
  monkeypatch.setattr(phantoms, "generate_phantoms", None)  # never reached
  cfg = _data_config(num_train=4096, num_val=512, num_test=512)
  cfg.image_size = 4096
  with pytest.raises(ConfigError) as err:
    phantoms.load_phantoms(cfg)
  msg = str(err.value)
  assert "\n" not in msg
  assert msg.startswith("--image-size 4096 with 4096+512+512 phantoms")
  assert "needs ~" in msg and "more than the 1.0 GiB allowed" in msg
  # The estimate: at least the float32 images of the train split.
  need = phantoms.generation_bytes((4096, 512, 512), 4096, 0.5)
  assert need >= 4096 * 4096 * 4096 * 4
  assert f"~{need / 2**30:.1f} GiB" in msg
  # Huge split sizes too, with the default (physical memory) bound.
  monkeypatch.undo()
  if phantoms.memory_limit_bytes() is None:
    pytest.skip("this platform does not report its physical memory")
  with pytest.raises(ConfigError, match="needs ~.* GiB of memory"):
    phantoms.load_phantoms(_data_config(num_train=10**12))


def test_memory_estimate_bounds_the_measured_peak():
  tracemalloc = pytest.importorskip("tracemalloc")
  n, size, sigma = 300, 32, 0.5
  tracemalloc.start()
  try:
    images, _ = _gen(n, size, seed=0, noise_std=0.02, blur_sigma=sigma)
    phantoms.to_uint8_images(images, source="t", key="k")
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  estimate = phantoms.generation_bytes((n,), size, sigma)
  assert peak <= estimate <= 3 * peak
