"""Physiological recordings read from files: WFDB records and CSV signals.

    rec = read_wfdb("../shared/data/mitbih_100/100")        # MLII, V5 @ 360 Hz
    rec = read_signal_csv("vitals.csv", rate=125.0)          # no time column
    rec = select_channels(rec, "mlii")                       # any case

A `Recording` is one record: float64 signals [time, channels] in the record's
units with NaN at gaps (a WFDB sample marked invalid, an empty CSV cell), the
channel names and units, the sampling rate, and the annotated beats when the
record has beat annotations. `data/series.py` turns recordings into examples.

WFDB records are read with the `wfdb` package (the optional `series` extra),
single- or multi-segment (segments are joined by wfdb, channels missing from
a segment are gaps), any storage format wfdb reads (.dat, .mat). A channel
stored at k samples per frame is averaged over each frame (k consecutive
samples, a frame with an invalid sample is a gap), so every channel has the
record's frame rate, as wfdb's `smooth_frames` does but with gaps kept.

Beats are the annotations whose symbol WFDB counts as a QRS (`BEAT_SYMBOLS`,
wfdb's `is_qrs`); rhythm changes, noise and comments ('+', '~', '"', ...)
are not beats. Annotation sample numbers are converted from the annotation
file's own rate (e.g. 500 Hz for a high-resolution QRS detector) to the
record's rate.

A CSV has a header row of channel names ("ABP (mmHg)" or "ABP [mmHg]" also
gives the unit), numeric cells (empty, NA or NaN = a gap), and either a time
column in seconds (evenly spaced within 1%; it gives the rate) or a rate
given by the caller (--rate).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import re
from typing import Sequence

import numpy as np

from medgen_jax.configs.series import flag_text
from medgen_jax.data.expression_table import as_number, is_missing, one_line
from medgen_jax.data.csv_rows import read_csv_rows
from medgen_jax.errors import DataError

logger = logging.getLogger("medgen_jax")

# WFDB's QRS (beat) annotation symbols: wfdb.io.annotation.is_qrs, which is
# the standard PhysioNet beat code set N L R B A a J S V r F e j n E / f Q ?
# plus '!' (ventricular flutter wave).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?!")
# CSV columns taken as the time column (any case) unless --time-column says.
TIME_COLUMNS = ("time", "t", "seconds", "time_s", "timestamp")
EVEN_TOLERANCE = 0.01  # relative deviation allowed between CSV time steps
# Files beside a record that are never annotation files.
_NOT_ANNOTATIONS = frozenset(
    ("hea", "dat", "mat", "edf", "csv", "txt", "md", "json", "xml", "png",
     "jpg", "pdf", "html", "gz", "zip", "npz", "npy", "h5ad", "py"))
_UNIT = re.compile(r"^(.*?)\s*[\(\[]([^()\[\]]*)[\)\]]$")  # "ABP (mmHg)"


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
  """One multichannel record.

  Attributes:
    name: the record's name ("100", "vitals").
    signals: float64 [time, channels] in the record's units, NaN at gaps.
    channels: one name per channel.
    units: one unit per channel ("" when unknown).
    rate: samples per second (Hz).
    beats: int64 [k] sorted sample indices of the annotated beats, or None
      when the record has no annotation file.
    beat_symbols: one WFDB beat symbol per beat ("N", "V", ...), or None.
    source: the file it came from, for messages.
  """

  name: str
  signals: np.ndarray
  channels: tuple[str, ...]
  units: tuple[str, ...]
  rate: float
  beats: np.ndarray | None = None
  beat_symbols: tuple[str, ...] | None = None
  source: str = ""

  def __post_init__(self):
    x = np.asarray(self.signals, np.float64)
    if x.ndim != 2:
      raise ValueError(f"signals must be [time, channels], got {x.shape}")
    object.__setattr__(self, "signals", x)
    object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
    object.__setattr__(self, "units", tuple(str(u) for u in self.units))
    if not len(self.channels) == len(self.units) == x.shape[1]:
      raise ValueError(f"{len(self.channels)} channel names and "
                       f"{len(self.units)} units for {x.shape[1]} channels")
    if not (math.isfinite(self.rate) and self.rate > 0):
      raise ValueError(f"rate must be a positive number, got {self.rate}")
    object.__setattr__(self, "rate", float(self.rate))
    if (self.beats is None) != (self.beat_symbols is None):
      raise ValueError("beats and beat_symbols go together")
    if self.beats is not None:
      beats = np.asarray(self.beats, np.int64).reshape(-1)
      symbols = tuple(str(s) for s in self.beat_symbols)
      if len(symbols) != beats.size:
        raise ValueError(f"{len(symbols)} beat symbols for {beats.size} beats")
      if beats.size and (beats.min() < 0 or beats.max() >= x.shape[0]
                         or np.any(np.diff(beats) < 0)):
        raise ValueError("beats must be sorted sample indices in the record")
      object.__setattr__(self, "beats", beats)
      object.__setattr__(self, "beat_symbols", symbols)

  @property
  def length(self) -> int:
    """Samples per channel."""
    return int(self.signals.shape[0])


# ---------------------------------------------------------------------------
# WFDB records.
# ---------------------------------------------------------------------------


def _wfdb(where):
  try:
    import wfdb  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise DataError(
        f"{where}: reading WFDB records needs the wfdb package; install it "
        "with pip install 'medgen_jax[series]'") from None
  return wfdb


def record_base(path) -> pathlib.Path:
  """The record path without its `.hea` suffix (`dir/100.hea` -> `dir/100`)."""
  path = pathlib.Path(path).expanduser()
  return path.with_name(path.name[:-4]) if path.name.lower().endswith(
      ".hea") else path


def _header_path(base: pathlib.Path) -> pathlib.Path:
  return base.with_name(base.name + ".hea")


def annotation_files(path) -> list[str]:
  """Extensions of the files beside a WFDB record that may be annotations.

  Args:
    path: the record (with or without `.hea`).

  Returns:
    Sorted extensions ("atr", "qrs", ...): files named RECORD.EXT that are
    neither the header, nor a signal file the header names, nor a known
    non-annotation type.
  """
  base = record_base(path)
  signal_files: set[str] = set()
  try:
    head = _wfdb(base).rdheader(str(base))
    signal_files = set(getattr(head, "file_name", None) or ())
  except Exception:  # pylint: disable=broad-except
    pass  # an unreadable header: list every candidate
  out = []
  if base.parent.is_dir():
    for f in base.parent.iterdir():
      ext = f.name[len(base.name) + 1:]
      if (f.name.startswith(base.name + ".") and ext and "." not in ext
          and f.is_file() and f.name not in signal_files
          and ext.lower() not in _NOT_ANNOTATIONS):
        out.append(ext)
  return sorted(out)


def _check_header(head, header: pathlib.Path, base: pathlib.Path) -> float:
  """Checks a parsed header by meaning; returns its rate."""
  fs = float(head.fs) if head.fs is not None else float("nan")
  if not (math.isfinite(fs) and fs > 0):
    raise DataError(
        f"{header}: sampling frequency {fs:g} Hz; expected a positive rate "
        "in the record line (NAME SIGNALS RATE SAMPLES); fix the header")
  n_sig = int(head.n_sig or 0)
  if n_sig < 1:
    raise DataError(f"{header} declares no signals; expected a record line "
                    "and one line per signal")
  if getattr(head, "seg_name", None) is not None:  # multi-segment
    for seg in head.seg_name:
      if seg != "~" and not (base.parent / f"{seg}.hea").is_file():
        raise DataError(f"{base.parent / (seg + '.hea')}: no such file; "
                        f"{header} names segment {seg!r}; put the segment's "
                        "files beside the header")
  else:
    files = list(head.file_name or ())
    if len(files) != n_sig:
      raise DataError(
          f"{header} declares {n_sig} signals but describes {len(files)}; "
          "the header is truncated or damaged: restore it from the source")
    for f in dict.fromkeys(files):
      if not (base.parent / f).is_file():
        raise DataError(f"{base.parent / f}: no such file; {header} names it "
                        f"as a signal file of record {base.name}; put it "
                        "beside the header")
  if head.sig_len is not None and int(head.sig_len) == 0:
    raise DataError(f"{header}: the record has 0 samples; expected a record "
                    "with signal data")
  return fs


def _frames(record, header: pathlib.Path, rate: float) -> np.ndarray:
  """float64 [frames, channels] from wfdb's expanded physical signals,
  each channel averaged over its samples per frame (NaN stays NaN)."""
  expanded = record.e_p_signal
  spf = [int(s or 1) for s in (record.samps_per_frame or [1] * len(expanded))]
  n = min(len(e) // k for e, k in zip(expanded, spf))
  if n == 0:
    raise DataError(f"{header}: the record has 0 samples; expected a record "
                    "with signal data")
  cols = [np.asarray(e[:n * k], np.float64).reshape(n, k).mean(axis=1)
          for e, k in zip(expanded, spf)]
  fast = [f"{name} ({k * rate:g} Hz)" for name, k in
          zip(record.sig_name or [], spf) if k > 1]
  if fast:
    logger.info("%s: %s averaged over each frame to the record's %g Hz",
                header, ", ".join(fast), rate)
  return np.stack(cols, axis=1)


def _names(values, prefix: str) -> list[str]:
  out = [str(v).strip() if v is not None else "" for v in values]
  return [v or f"{prefix}{i + 1}" for i, v in enumerate(out)]


def _unique(names: Sequence[str]) -> tuple[str, ...]:
  """Names made unique case-insensitively ("II", "II#2")."""
  seen: dict[str, int] = {}
  out = []
  for n in names:
    k = seen[n.lower()] = seen.get(n.lower(), 0) + 1
    out.append(n if k == 1 else f"{n}#{k}")
  return tuple(out)


def _read_beats(wfdb, base: pathlib.Path, ext: str, rate: float,
                length: int) -> tuple[np.ndarray, tuple[str, ...]]:
  """(sorted beat sample indices at `rate`, their symbols) of RECORD.ext."""
  path = base.with_name(f"{base.name}.{ext}")
  if not path.is_file():
    found = annotation_files(base)
    fix = (f"pass {flag_text('annotation', 'EXT')} with one of the files "
           f"beside it: {', '.join(found)}" if found else
           "no annotation file is beside it; leave --annotation empty")
    raise DataError(f"{path}: no such annotation file for record "
                    f"{base.name}; {fix}")
  try:
    ann = wfdb.rdann(str(base), ext)
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{path} is not a readable WFDB annotation file "
                    f"({one_line(e)}); choose another with --annotation EXT"
                    ) from None
  ann_fs = float(ann.fs) if ann.fs else rate
  samples = np.asarray(ann.sample, np.float64)
  if ann_fs != rate:  # e.g. a 500 Hz QRS detector on a 125 Hz record
    samples = samples * (rate / ann_fs)
  idx = np.round(samples).astype(np.int64)
  symbols = np.asarray([str(s) for s in ann.symbol], dtype=object)
  beat = np.array([s in BEAT_SYMBOLS for s in symbols], bool)
  inside = (idx >= 0) & (idx < length)
  if (beat & ~inside).any():
    logger.warning("%s: %d beat annotation(s) outside the record dropped",
                   path, int((beat & ~inside).sum()))
  keep = beat & inside
  order = np.argsort(idx[keep], kind="stable")
  return idx[keep][order], tuple(symbols[keep][order])


def read_wfdb(path, annotation: str = "") -> Recording:
  """Reads one WFDB record and its beat annotations.

  Args:
    path: the record path, with or without `.hea` (`dir/100`).
    annotation: the annotation file's extension ("atr", "qrs"); "" = "atr"
      when RECORD.atr exists, else no annotations.

  Returns:
    The Recording; `beats` is None when no annotation file is read.

  Raises:
    DataError: wfdb is not installed, or the header, a signal file or the
      annotation file is missing, unreadable or meaningless (0 Hz, no
      samples), naming the file.
  """
  base = record_base(path)
  header = _header_path(base)
  if not header.is_file():
    raise DataError(f"{header}: no such WFDB header; --data takes a record "
                    "path such as DIR/100 (beside DIR/100.hea and its signal "
                    "files)")
  wfdb = _wfdb(header)
  # wfdb raises many kinds of exceptions for damaged files (IndexError,
  # TypeError, its own HeaderSyntaxError ...): each becomes one DataError.
  try:
    head = wfdb.rdheader(str(base))
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{header} is not a readable WFDB header "
                    f"({one_line(e)}); expected a record line and one line "
                    "per signal (PhysioNet WFDB format)") from None
  rate = _check_header(head, header, base)
  try:
    rec = wfdb.rdrecord(str(base), physical=True, m2s=True,
                        smooth_frames=False)
  except FileNotFoundError as e:
    raise DataError(f"{e.filename or header}: no such file; record "
                    f"{base.name} needs it (see {header})") from None
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{header}: record {base.name} could not be read "
                    f"({one_line(e)}); its signal file may be truncated or "
                    "not match the header") from None
  signals = _frames(rec, header, rate)
  channels = _unique(_names(rec.sig_name or [], "ch"))
  units = tuple(str(u).strip() if u else ""
                for u in (rec.units or [""] * len(channels)))
  ext = annotation.strip().lstrip(".")
  if not ext and base.with_name(base.name + ".atr").is_file():
    ext = "atr"
  beats = symbols = None
  if ext:
    beats, symbols = _read_beats(wfdb, base, ext, rate, signals.shape[0])
  return Recording(name=base.name, signals=signals, channels=channels,
                   units=units, rate=rate, beats=beats, beat_symbols=symbols,
                   source=str(header))


# ---------------------------------------------------------------------------
# CSV signals.
# ---------------------------------------------------------------------------


def _csv_rows(path: pathlib.Path) -> tuple[list[str], list[list[str]],
                                            list[int]]:
  return read_csv_rows(
      path, too_big_hint="convert it to a WFDB record (wfdb.wrsamp) or "
      "split it", expected="one row per sample under a header row of channel "
      "names")


def _csv_column(path, name: str, cells: Sequence[str],
                lines: Sequence[int]) -> np.ndarray:
  """float64 values (NaN where a cell is missing); DataError naming the line
  of a cell that is not a finite number."""
  try:
    values = np.fromiter(map(float, cells), np.float64, count=len(cells))
  except ValueError:
    values = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
      if is_missing(cell):
        continue
      number = as_number(cell)
      if number is None:
        raise DataError(f"{path}: line {lines[i]}, column {name!r} holds "
                        f"{cell.strip()!r}; expected a number (an empty cell "
                        "or NaN marks a gap)")
      values[i] = number
  bad = np.isinf(values)
  if bad.any():
    i = int(np.argmax(bad))
    raise DataError(f"{path}: line {lines[i]}, column {name!r} holds "
                    f"{cells[i].strip()!r}; expected a finite number (leave "
                    "the cell empty to mark a gap)")
  return values


def _time_index(path, header: Sequence[str], names: Sequence[str],
                time_column: str) -> int | None:
  if time_column:
    want = time_column.strip().lower()
    for j, (h, n) in enumerate(zip(header, names)):
      if want in (h.lower(), n.lower()):
        return j
    raise DataError(f"{path} has no column {time_column!r} "
                    f"({flag_text('time_column', time_column)}); its columns "
                    f"are: {', '.join(header)}")
  return next((j for j, n in enumerate(names) if n.lower() in TIME_COLUMNS),
              None)


def _rate_from_times(path, name: str, t: np.ndarray,
                     lines: Sequence[int]) -> float:
  """The rate of evenly spaced times t [n] (seconds); DataError naming the
  first line that breaks it."""
  if np.isnan(t).any():
    i = int(np.argmax(np.isnan(t)))
    raise DataError(f"{path}: line {lines[i]} has no time in column "
                    f"{name!r}; every row needs its time")
  if t.size < 2:
    raise DataError(f"{path} has one row; a time column needs at least two "
                    "rows to give the sampling rate")
  dt = np.diff(t)
  if (dt <= 0).any():
    i = int(np.argmax(dt <= 0))
    raise DataError(
        f"{path}: line {lines[i + 1]}: time {t[i + 1]:g} does not increase "
        f"from {t[i]:g} (line {lines[i]}); column {name!r} must be strictly "
        "increasing")
  step = float(np.median(dt))
  uneven = np.abs(dt - step) > EVEN_TOLERANCE * step
  if uneven.any():
    i = int(np.argmax(uneven))
    raise DataError(
        f"{path}: line {lines[i + 1]}: time step {dt[i]:g} s (from line "
        f"{lines[i]}) differs from the usual step {step:g} s by more than "
        f"{EVEN_TOLERANCE:.0%}; the samples must be evenly spaced: resample "
        "the file, or drop the time column and pass --rate HZ")
  return 1.0 / step


def read_signal_csv(path, rate: float = 0.0,
                    time_column: str = "") -> Recording:
  """Reads a CSV of channels (see the module docstring).

  Args:
    path: the file.
    rate: samples per second when the file has no time column (0 = it must
      have one; with a time column, a rate given here must agree with it).
    time_column: the column of times in seconds; "" = a column named time,
      t, seconds, time_s or timestamp (any case), if any.

  Returns:
    The Recording (no beats; units from "NAME (UNIT)" headers, else "").
  """
  path = pathlib.Path(path).expanduser()
  header, rows, lines = _csv_rows(path)
  parsed = [_UNIT.match(h) for h in header]
  names = [m.group(1).strip() if m and m.group(1).strip() else h
           for m, h in zip(parsed, header)]
  units = [m.group(2).strip() if m and m.group(1).strip() else ""
           for m, h in zip(parsed, header)]
  cols = list(zip(*rows))
  del rows
  tj = _time_index(path, header, names, time_column)
  if tj is not None:
    t = _csv_column(path, header[tj], cols[tj], lines)
    found = _rate_from_times(path, header[tj], t, lines)
    if rate and abs(found - rate) > EVEN_TOLERANCE * rate:
      raise DataError(
          f"{path}: --rate {rate:g} Hz disagrees with its time column "
          f"{header[tj]!r} ({found:g} Hz); leave --rate at 0 or fix the file")
    rate = found
  elif not rate or rate <= 0:
    raise DataError(
        f"{path} has no time column ({', '.join(TIME_COLUMNS)}) and no rate "
        f"was given; pass {flag_text('rate', 'HZ')} or add a time column in "
        "seconds (named with --time-column)")
  keep = [j for j in range(len(header)) if j != tj and not (
      not header[j] and all(map(is_missing, cols[j])))]
  if not keep:
    raise DataError(f"{path} has no signal column; expected one column per "
                    "channel beside the time column")
  signals = np.stack([_csv_column(path, header[j] or f"column {j + 1}",
                                  cols[j], lines) for j in keep], axis=1)
  channels = _unique([names[j] or f"column_{j + 1}" for j in keep])
  return Recording(name=path.stem, signals=signals, channels=channels,
                   units=tuple(units[j] for j in keep), rate=float(rate),
                   source=str(path))


def select_channels(rec: Recording, names) -> Recording:
  """The channels `names` of `rec`, in that order.

  Args:
    rec: the recording.
    names: comma-separated names or a sequence of names, matched in any
      case; "" or empty = every channel.

  Raises:
    DataError: a name is not a channel of the record (listing its channels).
  """
  wanted = ([n.strip() for n in names.split(",")] if isinstance(names, str)
            else [str(n).strip() for n in names])
  wanted = [w for w in wanted if w]
  if not wanted:
    return rec
  index: dict[str, int] = {}
  for i, c in enumerate(rec.channels):
    index.setdefault(c.lower(), i)
  missing = [w for w in wanted if w.lower() not in index]
  if missing:
    raise DataError(
        f"{rec.source or rec.name}: no channel {missing[0]!r} (--channels); "
        f"the record's channels are: {', '.join(rec.channels)}")
  idx = list(dict.fromkeys(index[w.lower()] for w in wanted))
  return dataclasses.replace(
      rec, signals=rec.signals[:, idx],
      channels=tuple(rec.channels[i] for i in idx),
      units=tuple(rec.units[i] for i in idx))
