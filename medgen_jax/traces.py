"""Pictures of multichannel time series as image arrays (no matplotlib).

`trace_panel` draws groups of windows (say real, then generated) one above
the other, one example per row, each channel in its own horizontal band,
each group in its own colour, so a reader sees real and generated traces in
one PNG. It returns a float image [1, H, W, 3] in [-1, 1], the format of
`outputs.save_image_grid`. Lines are drawn with Pillow (a core dependency);
titles use Pillow's built-in bitmap font, so no font files are needed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from medgen_jax.errors import DataError

# Tableau colours: blue for the first group (real), red for the second.
COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
          (255, 127, 14), (140, 86, 75))
BACKGROUND = (255, 255, 255)
BAND_LINE = (235, 235, 235)    # between the channel bands of one example
ROW_LINE = (190, 190, 190)     # between examples
GROUP_LINE = (90, 90, 90)      # between groups
TITLE_HEIGHT = 14              # pixels above a group, when titles are given
PAD = 2                        # pixels kept free above and below a trace


def _validate(series_list, masks_list):
  """-> list of (x float [n, T, C], mask bool [n, T]) with one C."""
  if masks_list is None:
    masks_list = [None] * len(series_list)
  if len(series_list) == 0 or len(masks_list) != len(series_list):
    raise DataError(f"trace_panel: got {len(series_list)} series groups and "
                    f"{len(masks_list)} masks; pass one mask (or None) per "
                    "group, at least one group")
  groups = []
  for i, (x, m) in enumerate(zip(series_list, masks_list)):
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
      x = x[..., None]
    if x.ndim != 3:
      raise DataError(f"trace_panel: group {i} has shape {x.shape}; "
                      "expected [n, T, C] or [n, T]")
    m = np.ones(x.shape[:2], bool) if m is None else np.asarray(m, bool)
    if m.shape != x.shape[:2]:
      raise DataError(f"trace_panel: group {i} mask shape {m.shape} does not "
                      f"match its series' [n, T] = {x.shape[:2]}")
    groups.append((x, m & np.isfinite(x).all(-1)))
  channels = {x.shape[2] for x, _ in groups}
  if len(channels) != 1:
    raise DataError(f"trace_panel: groups have different channel counts "
                    f"{sorted(channels)}")
  return groups


def _channel_ranges(groups) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel min and max over every valid step shown: [C], [C]."""
  c = groups[0][0].shape[2]
  lo, hi = np.full(c, np.inf), np.full(c, -np.inf)
  for x, m in groups:
    for ch in range(c):
      v = x[..., ch][m]
      if v.size:
        lo[ch], hi[ch] = min(lo[ch], v.min()), max(hi[ch], v.max())
  lo[~np.isfinite(lo)], hi[~np.isfinite(hi)] = 0.0, 0.0
  return lo, hi


def _draw_trace(draw, values, valid, x_px, top, height, lo, hi, color):
  """One channel of one example in the band [top, top + height).

  Consecutive valid steps are joined by lines; a masked step leaves a gap;
  an isolated valid step is a dot.
  """
  span = height - 1 - 2 * PAD
  if hi > lo:
    y_px = top + PAD + (1.0 - (values - lo) / (hi - lo)) * span
  else:                                   # constant channel: mid-band
    y_px = np.full(values.shape, top + PAD + span / 2.0)
  y_px = np.round(y_px).astype(int)
  # Runs of consecutive valid steps: starts where valid turns on.
  edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
  for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
    points = list(zip(x_px[s:e].tolist(), y_px[s:e].tolist()))
    if len(points) == 1:
      draw.point(points, fill=color)
    else:
      draw.line(points, fill=color, width=1)


def trace_panel(series_list: Sequence[np.ndarray],
                masks_list: Sequence[np.ndarray | None] | None,
                titles: Sequence[str] | None = None,
                height_per_channel: int = 48, width: int | None = None,
                colors: Sequence[tuple[int, int, int]] | None = None
                ) -> np.ndarray:
  """Draws groups of multichannel windows as one picture.

  Layout, top to bottom: for each group an optional title line, then one
  row per example; a row holds C bands of `height_per_channel` pixels, one
  per channel. Each channel's band is scaled to that channel's min/max over
  all valid steps shown (every group, so real and generated share a scale).
  Time runs left to right over the full width (step t of a T-step window at
  x = round(t (width - 1) / (T - 1))). Masked or non-finite steps are not
  drawn (a gap). Thin lines separate channel bands (faint), examples (grey)
  and groups (dark).

  Args:
    series_list: groups, each float [n_g, T_g, C] (or [n_g, T_g] for one
      channel); C is shared, T may differ.
    masks_list: one bool [n_g, T_g] (or None, all valid) per group, or None.
    titles: one short label per group, drawn above it (Pillow's built-in
      font), or None for no title lines.
    height_per_channel: band height in pixels.
    width: picture width; default the longest T, clipped to [256, 1024].
    colors: one (r, g, b) in 0..255 per group; default blue, red, green...

  Returns:
    float32 [1, H, W, 3] in [-1, 1], white background.
  """
  groups = _validate(series_list, masks_list)
  if titles is not None and len(titles) != len(groups):
    raise DataError(f"trace_panel: {len(titles)} titles for {len(groups)} "
                    "groups")
  if height_per_channel < 2 * PAD + 2:
    raise DataError(f"trace_panel: height_per_channel must be at least "
                    f"{2 * PAD + 2}, got {height_per_channel}")
  colors = list(colors) if colors is not None else list(COLORS)
  channels = groups[0][0].shape[2]
  if width is None:
    width = int(np.clip(max(x.shape[1] for x, _ in groups), 256, 1024))
  row_h = channels * height_per_channel
  title_h = TITLE_HEIGHT if titles is not None else 0
  # Each row: 1 separator pixel above it; each group: 2 above its title.
  height = sum(2 + title_h + len(x) * (row_h + 1) for x, _ in groups) - 2
  image = Image.new("RGB", (width, max(height, 1)), BACKGROUND)
  draw = ImageDraw.Draw(image)
  lo, hi = _channel_ranges(groups)

  top = 0
  for g, (x, m) in enumerate(groups):
    color = tuple(int(v) for v in colors[g % len(colors)])
    if g > 0:
      draw.rectangle([0, top, width - 1, top + 1], fill=GROUP_LINE)
      top += 2
    if titles is not None:
      draw.text((3, top + 1), str(titles[g]), fill=color)
      top += title_h
    t = x.shape[1]
    x_px = np.round(np.arange(t) * (width - 1) / max(t - 1, 1)).astype(int)
    for i in range(len(x)):
      if i > 0 or titles is not None:
        draw.line([(0, top), (width - 1, top)], fill=ROW_LINE)
      top += 1
      for ch in range(channels):
        band = top + ch * height_per_channel
        if ch > 0:
          draw.line([(0, band), (width - 1, band)], fill=BAND_LINE)
        _draw_trace(draw, x[i, :, ch], m[i], x_px, band, height_per_channel,
                    lo[ch], hi[ch], color)
      top += row_h
  pixels = np.asarray(image, np.float32)[None]           # [1, H, W, 3]
  return pixels / 127.5 - 1.0
