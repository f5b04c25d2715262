"""Image grids and the metrics log."""

import json

import numpy as np
from PIL import Image

from medgen_jax.outputs import MetricsLog, image_grid, save_image_grid, write_json


def test_image_grid_places_tiles_row_major():
  images = np.stack([np.full((3, 3, 1), v) for v in (-1.0, 0.0, 1.0)])
  grid = image_grid(images, ncols=2, pad=1)
  assert grid.shape == (1 + 2 * 4, 1 + 2 * 4, 1)
  assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 128 and grid[5, 1, 0] == 255
  assert grid[0].max() == 0  # border


def test_save_image_grid_png(tmp_path):
  rgb = np.zeros((4, 8, 8, 3), np.float32)
  rgb[..., 0] = 1.0  # red
  path = save_image_grid(tmp_path / "g.png", rgb, scale=1)
  img = np.asarray(Image.open(path))
  assert img.shape == (2 + 2 * 10, 2 + 2 * 10, 3)
  assert tuple(img[3, 3]) == (255, 128, 128)


def test_metrics_log_truncate(tmp_path):
  log = MetricsLog(tmp_path / "metrics.jsonl")
  log.write([{"step": s, "loss": s / 10} for s in (1, 2, 3, 4)])
  with open(log.path, "a") as f:
    f.write('{"step": 5, "lo')  # cut by a crash
  assert [r["step"] for r in log.read()] == [1, 2, 3, 4]
  log.truncate_after(2)
  assert [r["step"] for r in log.read()] == [1, 2]


def test_write_json_atomic(tmp_path):
  write_json(tmp_path / "c.json", {"b": 1, "a": [1, 2]})
  assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2], "b": 1}
  assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp left
