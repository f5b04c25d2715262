"""Pictures of sleep series as image arrays (Pillow, no matplotlib).

* `hypnogram_panel`: one night per row as a step plot with the clinical
  stage order (W on top, then REM, N1, N2, N3), REM drawn as a thick bar;
  real nights above generated ones, each group in its colour, a tick per
  hour along the bottom of every row.
* `actogram`: one calendar day per row (midnight to midnight), activity
  counts as vertical bars, non-wear / masked epochs shaded grey; real days
  above generated days.

Both return float32 [1, H, W, 3] in [-1, 1] (the format of
`outputs.save_image_grid`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from medgen_jax.data.sleep_stages import N1, N2, N3, REM, WAKE
from medgen_jax.traces import BACKGROUND, COLORS, GROUP_LINE, ROW_LINE

TITLE_HEIGHT = 14
MASKED = (225, 225, 225)
TICK = (150, 150, 150)
# Rows from the top of a hypnogram band: W, REM, N1, N2, N3.
LEVEL = {WAKE: 0, REM: 1, N1: 2, N2: 3, N3: 4}
DAY_SECONDS = 86400.0


def _to_image(image: Image.Image) -> np.ndarray:
  return np.asarray(image, np.float32)[None] / 127.5 - 1.0


def _group_header(draw, top: int, width: int, index: int,
                  title: str) -> tuple[int, tuple[int, int, int]]:
  """A group's separator and title; returns (top of its first row, colour)."""
  color = COLORS[index % len(COLORS)]
  if index:
    draw.rectangle([0, top, width - 1, top + 1], fill=GROUP_LINE)
  draw.text((3, top + 3), str(title), fill=color)
  return top + 2 + TITLE_HEIGHT, color


def _height(groups, row_h: int) -> int:
  return sum(TITLE_HEIGHT + 2 + len(g) * (row_h + 1) for g in groups)


def hypnogram_panel(groups: Sequence[np.ndarray],
                    masks: Sequence[np.ndarray], titles: Sequence[str],
                    epoch_seconds: float = 30.0, row_height: int = 60,
                    width: int = 720) -> np.ndarray:
  """Nights as step plots.

  Args:
    groups: per group int-like stage codes [n, T] (0 W .. 4 REM).
    masks: per group bool [n, T] (unscored epochs are left blank).
    titles: one label per group.
    epoch_seconds: seconds per epoch (hour ticks).
    row_height: pixels per night.
    width: pixels across the longest night.
  """
  steps = max(np.asarray(g).shape[1] for g in groups)
  image = Image.new("RGB", (width, _height(groups, row_height)), BACKGROUND)
  draw = ImageDraw.Draw(image)
  px = width / steps
  level_h = (row_height - 6) / 4.0
  top = 0
  for gi, (x, m, title) in enumerate(zip(groups, masks, titles)):
    top, color = _group_header(draw, top, width, gi, title)
    x, m = np.rint(np.asarray(x)).astype(int), np.asarray(m, bool)
    for i in range(x.shape[0]):
      draw.line([(0, top), (width - 1, top)], fill=ROW_LINE)
      top += 1
      y = [top + 3 + LEVEL.get(int(s), 0) * level_h for s in x[i]]
      for h in range(1, int(steps * epoch_seconds // 3600) + 1):
        xh = int(round(h * 3600 / epoch_seconds * px))
        draw.line([(xh, top + row_height - 4), (xh, top + row_height - 1)],
                  fill=TICK)
      for t in range(x.shape[1]):
        if not m[i, t]:
          continue
        x0, x1 = int(round(t * px)), int(round((t + 1) * px))
        yt = int(round(y[t]))
        if x[i, t] == REM:
          draw.rectangle([x0, yt - 1, max(x1 - 1, x0), yt + 1], fill=color)
        else:
          draw.line([(x0, yt), (x1, yt)], fill=color)
        if t + 1 < x.shape[1] and m[i, t + 1]:
          draw.line([(x1, yt), (x1, int(round(y[t + 1])))], fill=color)
      top += row_height
  return _to_image(image)


def _days(x: np.ndarray, m: np.ndarray, t0: float, epoch: float):
  """Splits one window into calendar days: [(values [D], mask [D])], each
  day midnight to midnight (epochs outside the window masked)."""
  per_day = int(round(DAY_SECONDS / epoch))
  lead = int(round(np.mod(t0, DAY_SECONDS) / epoch)) % per_day
  total = -(-(lead + x.size) // per_day) * per_day
  vals, mask = np.zeros(total), np.zeros(total, bool)
  vals[lead:lead + x.size], mask[lead:lead + x.size] = x, m
  return [(vals[d:d + per_day], mask[d:d + per_day])
          for d in range(0, total, per_day)]


def actogram(groups: Sequence[np.ndarray], masks: Sequence[np.ndarray],
             starts: Sequence[np.ndarray], titles: Sequence[str],
             epoch_seconds: float = 60.0, row_height: int = 28,
             width: int = 720, max_days: int = 7) -> np.ndarray:
  """Days of activity counts stacked, real then generated.

  Args:
    groups: per group counts [n, T].
    masks: per group bool [n, T] (False: non-wear or padding, shaded).
    starts: per group t0 [n], seconds since midnight of each window's start.
    titles: one label per group.
    epoch_seconds: seconds per epoch.
    row_height: pixels per day.
    width: pixels per day (midnight to midnight; a tick every 6 h).
    max_days: days drawn per group.
  """
  rows = []
  for x, m, t0 in zip(groups, masks, starts):
    days = []
    for i in range(np.asarray(x).shape[0]):
      days += _days(np.asarray(x[i], float), np.asarray(m[i], bool),
                    float(t0[i]), epoch_seconds)
    rows.append(days[:max_days])
  shown = np.concatenate([v[k] for day in rows for v, k in day] or [[0.0]])
  cap = float(np.percentile(shown[shown > 0], 95)) if (shown > 0).any() else 1
  image = Image.new("RGB", (width, _height(rows, row_height)), BACKGROUND)
  draw = ImageDraw.Draw(image)
  top = 0
  for gi, (days, title) in enumerate(zip(rows, titles)):
    top, color = _group_header(draw, top, width, gi, title)
    for vals, mask in days:
      draw.line([(0, top), (width - 1, top)], fill=ROW_LINE)
      top += 1
      px = width / vals.size
      base = top + row_height - 1
      for t in range(vals.size):
        x0 = int(t * px)
        if not mask[t]:
          draw.line([(x0, top), (x0, base)], fill=MASKED)
        elif vals[t] > 0:
          h = min(vals[t] / cap, 1.0) * (row_height - 3)
          draw.line([(x0, base), (x0, int(round(base - h)))], fill=color)
      for q in (1, 2, 3):
        xq = int(round(q * width / 4))
        draw.line([(xq, base - 3), (xq, base)], fill=TICK)
      top += row_height
  return _to_image(image)
