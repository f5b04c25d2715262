"""Tests of medgen_jax/traces.py: layout, scaling, gaps and colours."""

import numpy as np
import pytest

from medgen_jax import outputs, traces
from medgen_jax.errors import DataError

WHITE = np.array([1.0, 1.0, 1.0], np.float32)


def _rgb(color):
  return np.asarray(color, np.float32) / 127.5 - 1.0


def _is(pixel, color):
  return np.allclose(pixel, _rgb(color), atol=1e-6)


def test_shape_range_and_background():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(2, 50, 3)), rng.normal(size=(3, 50, 3))
  image = traces.trace_panel([real, fake], None, height_per_channel=20,
                             width=300)
  # 5 rows of 3 * 20 pixels, a separator above each, 2 between the groups.
  assert image.shape == (1, 5 * (60 + 1) + 2, 300, 3)
  assert image.dtype == np.float32
  assert image.min() >= -1.0 and image.max() <= 1.0
  assert np.allclose(image[0, 0], WHITE)            # top margin: background
  colors = {tuple(p) for p in image[0].reshape(-1, 3)}
  assert tuple(_rgb(traces.COLORS[0])) in colors    # real drawn in blue
  assert tuple(_rgb(traces.COLORS[1])) in colors    # generated in red


def test_constant_line_and_masked_gap():
  t, hpc = 100, 21
  x = np.zeros((1, t, 2))
  x[0, :, 1] = np.linspace(-1.0, 1.0, t)     # a ramp: sets channel 1's range
  mask = np.ones((1, t), bool)
  mask[0, 40:60] = False
  x_junk = np.where(mask[..., None], x, 1e6)  # masked values must not matter
  image = traces.trace_panel([x_junk], [mask], height_per_channel=hpc,
                             width=t)[0]
  color = traces.COLORS[0]
  # Channel 0 is constant: drawn mid-band, row 1 (separator) + pad + span/2.
  mid = 1 + traces.PAD + (hpc - 1 - 2 * traces.PAD) // 2
  for col in (0, 20, 39, 60, 99):
    assert _is(image[mid, col], color), col
  for col in range(41, 60):                  # the gap: background only
    assert np.allclose(image[:, col][1:1 + hpc], WHITE), col
  # Channel 1 spans its band: its first step at the bottom, last at the top.
  band = 1 + hpc
  assert _is(image[band + hpc - 1 - traces.PAD, 0], color)
  assert _is(image[band + traces.PAD, t - 1], color)


def test_shared_scale_across_groups():
  """Real and generated share each channel's range: a series at the real
  maximum is drawn at the top of its band in both groups."""
  real = np.full((1, 10, 1), 5.0)
  fake = np.full((1, 10, 1), 5.0)
  low = np.full((1, 10, 1), -5.0)
  hpc = 16
  image = traces.trace_panel([np.concatenate([real, low]), fake], None,
                             height_per_channel=hpc, width=10)[0]
  assert _is(image[1 + traces.PAD, 5], traces.COLORS[0])
  fake_top = 2 * (hpc + 1) + 2 + 1
  assert _is(image[fake_top + traces.PAD, 5], traces.COLORS[1])


def test_titles_colors_and_two_dim_input():
  rng = np.random.default_rng(1)
  image = traces.trace_panel([rng.normal(size=(2, 30))], None,
                             titles=["real"], colors=[(0, 128, 0)],
                             height_per_channel=12)
  assert image.shape == (1, traces.TITLE_HEIGHT + 2 * 13, 256, 3)
  title = image[0, :traces.TITLE_HEIGHT]
  assert not np.allclose(title, 1.0)         # the title text is drawn
  pixels = {tuple(p) for p in image[0].reshape(-1, 3)}
  assert tuple(_rgb((0, 128, 0))) in pixels


def test_saves_as_png(tmp_path):
  rng = np.random.default_rng(2)
  image = traces.trace_panel([rng.normal(size=(2, 40, 2))], None)
  path = outputs.save_image_grid(tmp_path / "traces.png", image)
  assert path.exists() and path.stat().st_size > 0


def test_bad_input():
  with pytest.raises(DataError):
    traces.trace_panel([np.zeros((2, 5, 1))], [np.ones((2, 4), bool)])
  with pytest.raises(DataError):
    traces.trace_panel([np.zeros((2, 5, 1)), np.zeros((2, 5, 2))], None)
