"""Sleep-stage hypnograms read from files: text, CSV/TSV and EDF+.

    hyp = read_hypnogram("sub-02_hypno_30s.txt")      # W, N1, ... one per line
    hyp = read_hypnogram("SC4001EC-Hypnogram.edf")     # Sleep-EDF, needs edfio
    hyp.stages                                         # int8 [T], UNKNOWN = -1

A `Hypnogram` is one stage per scoring epoch, coded as in sleep_stages.py
(0 W, 1 N1, 2 N2, 3 N3, 4 REM, UNKNOWN = -1 for unscored, artefact and
movement time).

Text files (.txt, .csv, .tsv, .hyp or no suffix) hold one token per line:
YASA integers (0-4, -1/-2 unknown; "2.0" is 2) or labels (W, Wake, N1, S1,
N2, N3, S3, S4, R, REM, ?, MT, ...), mixed freely; blank lines and lines
starting with '#' or '%' are skipped. A table (comma, tab or semicolon
separated) is read when its first line has a column named stage, stages,
hypnogram, hypno, sleep_stage, sleep stage or label (any case): one row
per epoch, other columns ignored.

EDF+ files (.edf, e.g. Sleep-EDF's *Hypnogram.edf, or any file that starts
like EDF) are read with `edfio` (the optional `sleep` extra). Every
annotation whose text is a stage ("Sleep stage W", "Sleep stage 1".."4",
"Sleep stage R", "Sleep stage ?", "Movement time", ...) covers
duration / epoch epochs; other annotations ("Lights off") are ignored.
Epochs are counted from the first stage annotation (at 0 s in Sleep-EDF);
gaps between annotations are UNKNOWN and overlaps are refused. The epoch is
`epoch_seconds` when every stage onset and duration is a whole number of
them (within 1 % of an epoch); otherwise, when the shortest stage duration
divides them all and `epoch_seconds` is not a multiple of it, that one (the
file says so, e.g. 20-s R&K epochs); otherwise the file is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import logging
import pathlib

import numpy as np

from medgen_jax.data.expression_table import one_line
from medgen_jax.data.sleep_stages import STAGE_NAMES, UNKNOWN, stage_code
from medgen_jax.errors import DataError

logger = logging.getLogger("medgen_jax")

TEXT_SUFFIXES = ("", ".txt", ".csv", ".tsv", ".hyp")
EDF_SUFFIXES = (".edf",)
# Stage-column names of a table, compared lower-cased without ' ', '_', '-'.
STAGE_COLUMNS = ("stage", "stages", "hypnogram", "hypno", "sleepstage",
                 "sleepstages", "label", "labels")
ACCEPTED = ("0-4 or -1/-2 (YASA integers), W, Wake, N1, N2, N3, S1-S4, R, "
            "REM, or ?, MT, U, ART (unscored)")
EPOCH_TOLERANCE = 0.01   # of an epoch, for EDF+ onsets and durations
_EDF_MAGIC = b"0       "  # an EDF file's 8-byte version field


@dataclasses.dataclass(frozen=True, eq=False)
class Hypnogram:
  """One night's (or nap's) stages, one per scoring epoch.

  Attributes:
    source: the file it came from.
    stages: int8 [T] stage codes 0..4, UNKNOWN (-1) where unscored.
    epoch_seconds: the length of one epoch in seconds.
    start: the start of the first epoch when the file has one (EDF+), else
      None.
  """

  source: str
  stages: np.ndarray
  epoch_seconds: float = 30.0
  start: datetime.datetime | None = None

  def __post_init__(self):
    stages = np.asarray(self.stages).reshape(-1)
    if stages.size and (stages.min() < UNKNOWN or stages.max() >= len(
        STAGE_NAMES)):
      raise ValueError(f"stages must be in -1..{len(STAGE_NAMES) - 1}")
    object.__setattr__(self, "stages", stages.astype(np.int8))
    if not self.epoch_seconds > 0:
      raise ValueError(f"epoch_seconds must be > 0, got {self.epoch_seconds}")
    object.__setattr__(self, "epoch_seconds", float(self.epoch_seconds))

  @property
  def num_epochs(self) -> int:
    """Epochs in the hypnogram, unknown ones included."""
    return int(self.stages.size)


def read_hypnogram(path, epoch_seconds: float = 30.0) -> Hypnogram:
  """Reads a hypnogram file by its content; DataError if it is not one.

  Args:
    path: a text/CSV/TSV hypnogram or an EDF+ hypnogram (see the module).
    epoch_seconds: the scoring epoch; text files cannot say it, EDF+ files
      may (see the module docstring).

  Returns:
    The Hypnogram; at least one of its epochs has a known stage.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataError(f"{path}: no such file")
  if not epoch_seconds > 0:
    raise DataError(f"{path}: epoch_seconds is {epoch_seconds}; expected a "
                    "positive number of seconds, e.g. 30")
  suffix = path.suffix.lower()
  if suffix not in TEXT_SUFFIXES + EDF_SUFFIXES:
    raise DataError(
        f"{path}: unknown hypnogram format '{path.suffix}'; expected a text "
        "file (.txt, .csv, .tsv, .hyp or no suffix, one stage per line) or "
        "an EDF+ hypnogram (.edf)")
  with open(path, "rb") as f:
    magic = f.read(len(_EDF_MAGIC))
  if suffix in EDF_SUFFIXES or magic == _EDF_MAGIC:
    hyp = _read_edf(path, float(epoch_seconds))
  else:
    hyp = Hypnogram(str(path), _read_text(path), float(epoch_seconds))
  if not np.any(hyp.stages != UNKNOWN):
    raise DataError(
        f"{path}: all {hyp.num_epochs} epochs are unscored or unknown; "
        "expected at least one W, N1, N2, N3 or REM epoch")
  return hyp


# ---------------------------------------------------------------------------
# Text and tables.
# ---------------------------------------------------------------------------


def _norm(name: str) -> str:
  return "".join(c for c in name.strip().lower() if c not in " _-")


def _code(token: str) -> int | None:
  code = stage_code(token)
  if code is None:
    try:   # "2.0", as pandas writes integer columns with gaps
      value = float(token)
    except ValueError:
      return None
    if value.is_integer():
      code = stage_code(str(int(value)))
  return code


def _read_text(path: pathlib.Path) -> np.ndarray:
  """int8 [T] stages of a text hypnogram (one token a line, or a table)."""
  data = path.read_bytes()
  try:
    if b"\0" in data:
      raise UnicodeDecodeError("utf-8", data, 0, 1, "binary")
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError:
    raise DataError(
        f"{path} is not a text file; expected one sleep stage per line "
        "(UTF-8 text) or an EDF+ hypnogram (.edf)") from None
  lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
  lines = [(n, s) for n, s in lines if s and not s.startswith(("#", "%"))]
  if not lines:
    raise DataError(f"{path} has no stages; expected one sleep stage per "
                    f"line: {ACCEPTED}")
  first_line, first = lines[0]
  delimiter = next((d for d in ("\t", ",", ";") if d in first), None)
  if path.suffix.lower() == ".tsv":
    delimiter = "\t"
  header = next(csv.reader([first], delimiter=delimiter or ","))
  names = [_norm(h) for h in header]
  column = next((i for i, h in enumerate(names) if h in STAGE_COLUMNS), None)
  if column is None and (delimiter is not None and len(header) > 1):
    raise DataError(
        f"{path}: line {first_line}: no stage column among "
        f"{[h.strip() for h in header]}; expected a column named stage, "
        "hypnogram, sleep_stage or label (any case), or one stage per line")
  if column is None:   # one token per line
    tokens = lines
  else:
    lines = lines[1:]
    rows = csv.reader([s for _, s in lines], delimiter=delimiter or ",")
    tokens = []
    for (n, _), row in zip(lines, rows):
      if len(row) <= column:
        raise DataError(
            f"{path}: line {n} has {len(row)} fields but the stage column "
            f"'{header[column].strip()}' is field {column + 1}; every line "
            "needs one field per column")
      tokens.append((n, row[column].strip()))
    if not tokens:
      raise DataError(f"{path} has a header but no rows; expected one row "
                      "per epoch")
  codes = {}
  stages = np.empty(len(tokens), np.int8)
  for i, (n, token) in enumerate(tokens):
    if token not in codes:
      codes[token] = _code(token)
      if codes[token] is None:
        raise DataError(f"{path}: line {n}: '{one_line(token)}' is not a "
                        f"sleep stage; expected one of {ACCEPTED}")
    stages[i] = codes[token]
  return stages


# ---------------------------------------------------------------------------
# EDF+ annotations.
# ---------------------------------------------------------------------------


def _whole(values: np.ndarray, epoch: float) -> np.ndarray:
  """Whether each value is a whole number of epochs (within the tolerance)."""
  k = values / epoch
  return np.abs(k - np.round(k)) <= EPOCH_TOLERANCE


def _read_edf(path: pathlib.Path, epoch: float) -> Hypnogram:
  """A Hypnogram from an EDF+ file's sleep-stage annotations."""
  try:
    import edfio  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise DataError(f"{path}: reading EDF+ hypnograms needs edfio: pip "
                    "install 'medgen_jax[sleep]'") from None
  try:
    edf = edfio.read_edf(path)
    annotations = edf.annotations
  except Exception as e:  # pylint: disable=broad-except  # any damage
    raise DataError(
        f"{path} is not a readable EDF+ file ({one_line(e)}); expected an "
        "EDF+ hypnogram with sleep-stage annotations") from None
  try:   # (Edf.startdatetime is new in edfio 0.4.16)
    start = datetime.datetime.combine(edf.startdate, edf.starttime)
  except (edfio.AnonymizedDateError, ValueError):
    start = None
  found = [(a.onset, a.duration, a.text, stage_code(a.text))
           for a in annotations]
  stages = [a for a in found if a[3] is not None]
  for onset, _, text, code in found:
    if code is None and _norm(text).startswith("sleepstage"):
      raise DataError(f"{path}: annotation '{one_line(text)}' at {onset:g} s "
                      f"is not a sleep stage; expected one of {ACCEPTED}")
  if not stages:
    texts = sorted({one_line(a[2]) for a in found})
    raise DataError(
        f"{path} has no sleep-stage annotations (found {len(found)}: "
        f"{texts[:5]}); expected annotations such as 'Sleep stage W', "
        "'Sleep stage 2', 'Sleep stage R' or 'Sleep stage ?'")
  for onset, duration, text, _ in stages:
    if duration is None or not duration > 0:
      raise DataError(
          f"{path}: annotation '{one_line(text)}' at {onset:g} s has no "
          "duration; expected each stage annotation to last a whole number "
          "of epochs")
  onsets = np.array([a[0] for a in stages], np.float64)
  durations = np.array([a[1] for a in stages], np.float64)
  times = np.concatenate([onsets - onsets[0], durations])
  if not _whole(times, epoch).all():
    shortest = float(durations.min())
    if _whole(times, shortest).all() and not _whole(
        np.array([epoch]), shortest)[0]:
      logger.info("%s: stage annotations last whole %g-s epochs, not %g-s "
                  "ones; using %g-s epochs", path, shortest, epoch, shortest)
      epoch = shortest
    else:
      i = int(np.argmin(_whole(times, epoch))) % len(stages)
      raise DataError(
          f"{path}: annotation '{one_line(stages[i][2])}' at {onsets[i]:g} s "
          f"lasting {durations[i]:g} s does not cover whole {epoch:g}-s "
          "epochs; expected onsets and durations in whole epochs (pass "
          "epoch_seconds=the scoring epoch)")
  first = np.round((onsets - onsets[0]) / epoch).astype(np.int64)
  count = np.round(durations / epoch).astype(np.int64)
  out = np.full(int((first + count).max()), UNKNOWN, np.int8)
  covered = np.zeros(out.size, bool)
  for i, (a, k) in enumerate(zip(first, count)):
    if covered[a:a + k].any():
      j = max(j for j in range(i) if first[j] + count[j] > a)
      raise DataError(
          f"{path}: annotation '{one_line(stages[i][2])}' at {onsets[i]:g} s "
          f"overlaps '{one_line(stages[j][2])}' at {onsets[j]:g} s; expected "
          "one stage per epoch")
    covered[a:a + k] = True
    out[a:a + k] = stages[i][3]
  if start is not None:
    start += datetime.timedelta(seconds=float(onsets[0]))
  return Hypnogram(str(path), out, epoch, start)
