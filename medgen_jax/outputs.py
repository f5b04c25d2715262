"""What a run writes for people to read: JSON, JSON lines and PNG grids.

Every write goes to a temporary file in the same folder first and is then
renamed over the target, so an interrupted run never leaves a half-written
config.json or PNG.
"""

from __future__ import annotations

import io
import json
import math
import os
import pathlib
import tempfile
from typing import Any, Iterable

import numpy as np
from PIL import Image

from medgen_jax.data.pipeline import unit_range_to_uint8


def _atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically (a temporary file, then a rename)."""
  _atomic_write_bytes(pathlib.Path(path), data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as indented JSON, atomically."""
  text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
  _atomic_write_bytes(pathlib.Path(path), text.encode())


def volume_panels(volumes: np.ndarray, pad: int = 1,
                  fill: float = -1.0) -> np.ndarray:
  """3-D images [n, x, y, z, c] (RAS+) -> 2-D pictures [n, s, 3s + 2pad, c]:
  the middle axial, coronal and sagittal slices side by side, separated by
  columns of `fill` (-1: dark for images in [-1, 1]; cubes only, as the 3-D
  models make)."""
  from medgen_jax.data.volumes import middle_slices  # noqa: PLC0415
  panels = middle_slices(np.asarray(volumes, np.float32))
  gap = np.full(panels[0].shape[:2] + (pad,) + panels[0].shape[3:], fill,
                np.float32)
  return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=2)


def image_grid(images: np.ndarray, ncols: int | None = None,
               pad: int = 2) -> np.ndarray:
  """Tiles images [n, h, w, c] in [-1, 1] into one uint8 picture.

  3-D images [n, x, y, z, c] are shown as their three middle slices
  (`volume_panels`), one volume per tile.

  Returns:
    uint8 [rows*(h+pad)+pad, cols*(w+pad)+pad, c] with a dark border.
  """
  if np.ndim(images) == 5:
    images = volume_panels(images)
    ncols = ncols or max(1, int(round(math.sqrt(len(images) / 3))))
  images = unit_range_to_uint8(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c),
                  np.uint8)
  for i in range(n):
    r, q = divmod(i, ncols)
    y, x = pad + r * (h + pad), pad + q * (w + pad)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def save_image_grid(path: str | os.PathLike, images: np.ndarray,
                    ncols: int | None = None, scale: int = 0) -> pathlib.Path:
  """Saves images [n, h, w, c] in [-1, 1] as one PNG grid (atomically).

  Args:
    scale: integer upscaling for small images; 0 picks one that makes the
      grid at least ~512 pixels wide.
  """
  grid = image_grid(np.asarray(images), ncols)
  if scale == 0:
    scale = max(1, 512 // grid.shape[1])
  if scale > 1:
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    path = path.with_suffix(".png")
  buf = io.BytesIO()
  img.save(buf, format="PNG")
  _atomic_write_bytes(path, buf.getvalue())
  return path


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> pathlib.Path:
  """Saves named arrays as one .npz file (atomically)."""
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
  path = pathlib.Path(path)
  _atomic_write_bytes(path, buf.getvalue())
  return path


def _nifti_writer(compress: bool):
  def write(path, samples: dict[str, np.ndarray], config) -> None:
    from medgen_jax.data.nifti_files import nifti_bytes  # noqa: PLC0415
    spacing = config.data.get("voxel_spacing", None) or 1.0
    _atomic_write_bytes(pathlib.Path(path), nifti_bytes(
        np.asarray(samples["image"]), spacing, compress=compress))
  return write


# `medgen sample --out FILE`: file-name ending -> writer(path, samples, run
# config), beside the built-in .png (a picture) and .npz (the arrays).
SAMPLE_WRITERS = {".nii.gz": _nifti_writer(True),
                  ".nii": _nifti_writer(False)}


class MetricsLog:
  """Appends one JSON object per logged step to `metrics.jsonl`."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)

  def truncate_after(self, step: int) -> None:
    """Drops records with step > `step` (left by a run that crashed after
    its last checkpoint), so a resumed run's log has each step once."""
    if not self.path.exists():
      return
    keep = [line for line in self.read() if line.get("step", 0) <= step]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep)
    _atomic_write_bytes(self.path, text.encode())

  def write(self, records: Iterable[dict[str, Any]]) -> None:
    with open(self.path, "a") as f:
      for r in records:
        f.write(json.dumps(r, sort_keys=True) + "\n")

  def read(self) -> list[dict[str, Any]]:
    if not self.path.exists():
      return []
    out = []
    with open(self.path) as f:
      for line in f:
        line = line.strip()
        if line:
          try:
            out.append(json.loads(line))
          except json.JSONDecodeError:
            break  # a line cut by a crash ends the log
    return out


# ------------------------------------------------------------------ reports


def _cell(value: Any) -> str:
  """A table cell: floats to 4 significant digits, the rest as text."""
  if isinstance(value, (bool, np.bool_)):
    return str(bool(value))
  if isinstance(value, (float, np.floating)):
    v = float(value)
    if not math.isfinite(v):
      return str(v)
    return f"{v:.4g}"
  return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
  """Rows of dicts (columns in first-seen order) as a Markdown table."""
  if not rows:
    return "(no rows)\n"
  cols: list[str] = []
  for r in rows:
    cols += [c for c in r if c not in cols]
  lines = ["| " + " | ".join(cols) + " |",
           "|" + "---|" * len(cols)]
  lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |"
            for r in rows]
  return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
  if isinstance(value, dict):
    return {str(k): _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if isinstance(value, np.ndarray):
    return _json_safe(value.tolist())
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    v = float(value)
    return v if math.isfinite(v) else str(v)  # JSON has no NaN
  if isinstance(value, (np.bool_,)):
    return bool(value)
  return value


def write_report(out_dir: str | os.PathLike, report, title: str) -> dict:
  """Writes a `train.task.Report` as report.json, report.md and PNGs.

  Pictures are written first and the two reports last, each atomically, so
  a report.json on disk always names pictures that exist.

  Returns:
    The JSON object written to report.json.
  """
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  files = []
  for name, (images, ncols) in report.images.items():
    files.append(save_image_grid(out_dir / f"{name}.png", images, ncols).name)
  for name, png in report.figures.items():
    _atomic_write_bytes(out_dir / f"{name}.png", png)
    files.append(f"{name}.png")
  obj = _json_safe({"title": title, "facts": report.facts,
                    "scalars": report.scalars, "tables": report.tables,
                    "notes": report.notes, "pictures": files})
  md = [f"# {title}\n"]
  if report.facts:
    md.append(markdown_table([{"setting": k, "value": json.dumps(
        _json_safe(v)) if isinstance(v, (dict, list, tuple)) else v}
                              for k, v in report.facts.items()]))
  md += [n + "\n" for n in report.notes]
  if report.scalars:
    md.append("## Scores\n")
    md.append(markdown_table([{"metric": k, "value": v}
                              for k, v in report.scalars.items()]))
  for name, rows in report.tables.items():
    md.append(f"## {name}\n")
    md.append(markdown_table(rows))
  if files:
    md.append("## Pictures\n")
    md += [f"![{f[:-4]}]({f})\n" for f in files]
  write_json(out_dir / "report.json", obj)
  _atomic_write_bytes(out_dir / "report.md", "\n".join(md).encode())
  return obj
