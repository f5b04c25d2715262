"""Survival curves of risk groups as an image array (Pillow, no matplotlib).

`survival_panel` draws, for each risk group (say low / medium / high
predicted risk), the Kaplan-Meier estimate of its patients as a solid step
line and the model's mean predicted survival curve as a dashed line of the
same colour, on survival probability (0..1) against time, with ticks, axis
labels, a title and a legend. It returns float32 [1, H, W, 3] in [-1, 1],
the format of `outputs.save_image_grid`. Text uses Pillow's default font.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from medgen_jax.errors import DataError
from medgen_jax.traces import BACKGROUND, COLORS

WIDTH, HEIGHT = 720, 480
LEFT, RIGHT = 64, 524          # pixel x of time 0 and of max_time
TOP, BOTTOM = 32, 424          # pixel y of survival 1 and of survival 0
LEGEND_LEFT = 540              # legend column: LEGEND_LEFT..WIDTH
AXIS = (60, 60, 60)
GRID = (232, 232, 232)
TEXT = (30, 30, 30)
LINE_WIDTH = 2
DASH = (8, 5)                  # pixels on, pixels off along a dashed line
Y_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
SURV_TOL = 1e-6


def plot_to_pixel(t, s, max_time: float):
  """Maps (time, survival) to integer pixel (x, y) of the panel.

  Args:
    t: time(s), scalar or array; 0 maps to LEFT, max_time to RIGHT.
    s: survival probability(ies), same shape; 1 maps to TOP, 0 to BOTTOM.
    max_time: time at the right end of the x axis (> 0).

  Returns:
    (x, y) as ints (scalars in, scalars out) or int arrays.
  """
  x = LEFT + np.asarray(t, np.float64) / max_time * (RIGHT - LEFT)
  y = BOTTOM - np.asarray(s, np.float64) * (BOTTOM - TOP)
  x, y = np.rint(x).astype(int), np.rint(y).astype(int)
  return (int(x), int(y)) if x.ndim == 0 else (x, y)


def step_points(times, surv, max_time: float) -> np.ndarray:
  """Vertices of a right-continuous survival step function.

  The function is 1 before times[0] and surv[i] on [times[i], times[i+1]).
  The path starts at (0, 1), drops vertically at each time, and ends at the
  last time (clipped to max_time): a Kaplan-Meier curve stops at the last
  time given, so pass the last follow-up time (with an unchanged value) to
  draw the censored tail. Times past max_time are cut off there.

  Args:
    times: float [k], non-decreasing, >= 0.
    surv: float [k], survival from each time on.
    max_time: right end of the x axis.

  Returns:
    float [n, 2] of (time, survival), consecutive duplicates removed.
  """
  times, surv = np.asarray(times, np.float64), np.asarray(surv, np.float64)
  points, level = [(0.0, 1.0)], 1.0
  for t, s in zip(times, surv):
    if t > max_time:
      points.append((max_time, level))
      break
    points += [(t, level), (t, s)]
    level = s
  out = [points[0]]
  for p in points[1:]:
    if p != out[-1]:
      out.append(p)
  return np.asarray(out, np.float64).reshape(-1, 2)


def _clip_curve(times, surv, max_time):
  """Predicted curve points with t <= max_time (interpolated at the cut)."""
  keep = times <= max_time
  t, s = times[keep], surv[keep]
  if not keep.all() and keep.any() and t[-1] < max_time:
    t = np.append(t, max_time)
    s = np.append(s, np.interp(max_time, times, surv))
  return t, s


def nice_ticks(max_time: float, n: int = 5) -> np.ndarray:
  """About n ticks 0, d, 2d, ... <= max_time with d in {1, 2, 2.5, 5} 10^k."""
  base = 10.0 ** np.floor(np.log10(max_time / (n - 1)))
  steps = [m * base * e for e in (0.1, 1.0, 10.0) for m in (1, 2, 2.5, 5)]
  count = lambda d: int(np.floor(max_time / d * (1 + 1e-9))) + 1
  step = min(steps, key=lambda d: (abs(count(d) - n), -d))
  return np.arange(count(step)) * step


def _curve(group, tkey, skey, where):
  """Validated (times [k], surv [k]) of one curve; where: the error prefix."""
  t, s = (np.asarray(group[k], np.float64) for k in (tkey, skey))
  for key, a in ((tkey, t), (skey, s)):
    if a.ndim != 1 or a.size == 0:
      raise DataError(f"{where} {key!r} has shape {a.shape}; expected a "
                      "non-empty 1-D array")
    if not np.isfinite(a).all():
      raise DataError(f"{where} {key!r} has NaN or infinite values; pass "
                      "finite numbers")
  if t.shape != s.shape:
    raise DataError(f"{where} {tkey!r} shape {t.shape} does not match "
                    f"{skey!r} shape {s.shape}")
  if (t < 0).any() or (np.diff(t) < 0).any():
    raise DataError(f"{where} {tkey!r} must be non-negative and "
                    "non-decreasing; sort them")
  if (s < -SURV_TOL).any() or (s > 1 + SURV_TOL).any():
    raise DataError(f"{where} {skey!r} has values in [{s.min():g}, "
                    f"{s.max():g}]; expected [0, 1]")
  return t, np.clip(s, 0.0, 1.0)


def _validate(groups):
  """-> list of (name, km (t, s) or None, predicted (t, s))."""
  if len(groups) == 0:
    raise DataError("survival_panel: got no groups; pass at least one dict "
                    "with 'name', 'times' and 'surv'")
  out = []
  for i, g in enumerate(groups):
    missing = [k for k in ("name", "times", "surv")
               if not isinstance(g, Mapping) or g.get(k) is None]
    if missing:
      raise DataError(f"survival_panel: group {i} lacks {missing}; each group "
                      "is a dict with 'name', 'times', 'surv' (and optional "
                      "'km_times', 'km_surv')")
    name = str(g["name"])
    where, km = f"survival_panel: group {i} ({name!r})", None
    if g.get("km_times") is not None or g.get("km_surv") is not None:
      if g.get("km_times") is None or g.get("km_surv") is None:
        raise DataError(f"{where} has only one of 'km_times' and 'km_surv'; "
                        "pass both or neither")
      km = _curve(g, "km_times", "km_surv", where)
    out.append((name, km, _curve(g, "times", "surv", where)))
  return out


def _dashed(draw, xs, ys, color):
  """A polyline drawn DASH[0] pixels on, DASH[1] off along its length."""
  on, period, phase = DASH[0], sum(DASH), 0.0
  for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
    length = float(np.hypot(x1 - x0, y1 - y0))
    pos = 0.0
    while pos < length:
      p = (phase + pos) % period
      end = min(length, pos + (on - p if p < on else period - p))
      if p < on:
        a, b = pos / length, end / length
        draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                   (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                  fill=color, width=LINE_WIDTH)
      pos = end
    phase = (phase + length) % period


def _fit(draw, text, width):
  """text, cut with '..' to fit width pixels (dashes and other characters
  the built-in bitmap font lacks become '-' and '?')."""
  text = str(text).replace("\u2013", "-").replace("\u2014", "-")
  text = text.encode("latin-1", "replace").decode("latin-1")
  while text and draw.textlength(text) > width:
    text = text[:-3] + ".." if len(text) > 3 else ""
  return text


def _axes(draw, image, max_time, time_label, title):
  for s in Y_TICKS[1:-1]:
    y = plot_to_pixel(0.0, s, max_time)[1]
    draw.line([(LEFT + 1, y), (RIGHT - 1, y)], fill=GRID)
  draw.rectangle([LEFT, TOP, RIGHT, BOTTOM], outline=AXIS)
  for s in Y_TICKS:
    y = plot_to_pixel(0.0, s, max_time)[1]
    draw.line([(LEFT - 4, y), (LEFT, y)], fill=AXIS)
    label = f"{s:g}"
    draw.text((LEFT - 7 - draw.textlength(label), y - 6), label, fill=TEXT)
  for t in nice_ticks(max_time):
    x = plot_to_pixel(t, 0.0, max_time)[0]
    draw.line([(x, BOTTOM), (x, BOTTOM + 4)], fill=AXIS)
    label = f"{t:g}"
    draw.text((x - draw.textlength(label) / 2, BOTTOM + 7), label, fill=TEXT)
  draw.text(((LEFT + RIGHT - draw.textlength(time_label)) / 2, BOTTOM + 24),
            time_label, fill=TEXT)
  title = _fit(draw, title, WIDTH - 8)
  draw.text(((WIDTH - draw.textlength(title)) / 2, 10), title, fill=TEXT)
  ylabel = "survival probability"
  box = Image.new("RGB", (int(draw.textlength(ylabel)) + 2, 14), BACKGROUND)
  ImageDraw.Draw(box).text((1, 0), ylabel, fill=TEXT)
  box = box.rotate(90, expand=True)
  image.paste(box, (8, (TOP + BOTTOM - box.height) // 2))


def _legend(draw, names):
  y = TOP + 4
  for i, name in enumerate(names):
    color = COLORS[i % len(COLORS)]
    draw.line([(LEGEND_LEFT, y + 6), (LEGEND_LEFT + 14, y + 6)],
              fill=color, width=LINE_WIDTH)
    _dashed(draw, [LEGEND_LEFT + 22, LEGEND_LEFT + 43], [y + 6, y + 6], color)
    draw.text((LEGEND_LEFT + 50, y), _fit(draw, name, WIDTH - LEGEND_LEFT - 54),
              fill=TEXT)
    y += 18
  for line in ("solid = Kaplan-Meier,", "dashed = predicted"):
    y += 14
    draw.text((LEGEND_LEFT, y), line, fill=TEXT)


def survival_panel(groups: Sequence[Mapping], title: str = "",
                   time_label: str = "time",
                   max_time: float | None = None) -> np.ndarray:
  """Kaplan-Meier (solid steps) and predicted (dashed) curves per group.

  Args:
    groups: one dict per risk group with "name" (legend text), "times"
      float [m] and "surv" float [m] (mean predicted survival, drawn as a
      dashed polyline), and optional "km_times" float [k] and "km_surv"
      float [k] (Kaplan-Meier estimate, 1 before km_times[0], drawn as a
      solid step line; absent or None when there are no observed outcomes).
      Times are >= 0 and non-decreasing; survival lies in [0, 1].
    title: a line above the plot.
    time_label: the x axis label.
    max_time: right end of the x axis; default the largest time given.

  Returns:
    float32 [1, HEIGHT, WIDTH, 3] in [-1, 1], white background; group i is
    drawn in traces.COLORS[i].

  Raises:
    DataError: a group is missing a key, or its curves have mismatched
      shapes, non-finite values, survival outside [0, 1], or negative or
      decreasing times; or max_time is not positive.
  """
  curves = _validate(groups)
  if max_time is None:
    max_time = max(max(t[-1] for t, _ in filter(None, (km, pred)))
                   for _, km, pred in curves)
  if not np.isfinite(max_time) or max_time <= 0:
    raise DataError(f"survival_panel: max_time is {max_time}; the x axis "
                    "needs a positive time (pass max_time, or a time > 0)")
  image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
  draw = ImageDraw.Draw(image)
  _axes(draw, image, float(max_time), str(time_label), str(title))
  for i, (_, km, pred) in enumerate(curves):
    color = COLORS[i % len(COLORS)]
    t, s = _clip_curve(*pred, max_time)
    if t.size:
      xs, ys = plot_to_pixel(t, s, max_time)
      _dashed(draw, xs.tolist(), ys.tolist(), color)
    if km is not None:
      xs, ys = plot_to_pixel(*step_points(*km, max_time).T, max_time)
      draw.line(list(zip(xs.tolist(), ys.tolist())), fill=color,
                width=LINE_WIDTH)
  _legend(draw, [name for name, _, _ in curves])
  return np.asarray(image, np.float32)[None] / 127.5 - 1.0
