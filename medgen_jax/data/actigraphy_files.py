"""Wrist actigraphy read from files: Actiwatch AWD, CSV exports, sleep diaries.

    acti = read_actigraphy("example_01.AWD")    # or a .csv / .tsv export
    worn = nonwear_mask(acti.counts, acti.epoch_seconds)   # bool [T]
    naps = diary_epochs(read_sleep_diary("diary.csv"), acti.start,
                        acti.epoch_seconds, acti.counts.size, "NAP")

An `Actigraphy` holds one value per epoch: activity counts (NaN where
missing), event-marker presses and, when the device logs it, light.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import math
import pathlib
import re

import numpy as np

from medgen_jax.data.csv_rows import read_csv_rows
from medgen_jax.data.expression_table import one_line
from medgen_jax.errors import DataError

# AWD epoch code (header line 4) -> seconds.
AWD_EPOCH_CODES = {"1": 15.0, "2": 30.0, "4": 60.0, "8": 120.0, "20": 300.0,
                   "81": 2.0, "C1": 5.0, "C2": 10.0}
AWD_NOT_LIGHT = "IST"   # serial letters whose second value is not light
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
# CSV column names, compared lower-cased with '_'/'-' as spaces, units cut.
TIME_COLUMNS = ("timestamp", "datetime", "date time", "time stamp", "time")
ACTIVITY_COLUMNS = ("activity", "activity counts", "counts", "count", "axis1",
                    "axis 1", "vector magnitude", "vectormagnitude", "vm")
LIGHT_COLUMNS = ("light", "white light", "whitelight", "lux")
DATE_FORMATS = tuple(f"{d} {t}" for d in (
    "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y", "%Y/%m/%d", "%d.%m.%Y")
                     for t in ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p"))
STEP_TOLERANCE = 0.01  # of an epoch


@dataclasses.dataclass(frozen=True, eq=False)
class Actigraphy:
  """One actigraphy recording, one value per epoch.

  Attributes:
    source: the file it came from.
    subject: the subject id from the file header, else the file stem.
    start: the start of the first epoch.
    epoch_seconds: the epoch length in seconds.
    counts: float32 [T] activity counts, NaN where missing.
    marker: bool [T], True where the event-marker button was pressed.
    light: float32 [T] light (lux) when the file has a light column.
  """

  source: str
  subject: str
  start: datetime.datetime
  epoch_seconds: float
  counts: np.ndarray
  marker: np.ndarray
  light: np.ndarray | None = None

  def __post_init__(self):
    for name, dtype in (("counts", np.float32), ("marker", bool),
                        ("light", np.float32)):
      if (x := getattr(self, name)) is not None:
        object.__setattr__(self, name, np.asarray(x, dtype).reshape(-1))


def read_actigraphy(path) -> Actigraphy:
  """Reads an .awd (any case), .csv or .tsv actigraphy file by its suffix."""
  path = pathlib.Path(path).expanduser()
  reader = {".awd": read_awd, ".csv": read_actigraphy_csv,
            ".tsv": read_actigraphy_csv}.get(path.suffix.lower())
  if reader is None:
    raise DataError(f"{path}: unknown actigraphy format '{path.suffix}'; "
                    "expected .awd (Actiwatch) or .csv/.tsv (timestamp and "
                    "activity columns)")
  return reader(path)


def _number(text: str, allow_nan: bool) -> float | None:
  """A non-negative finite number, NaN for ""/NaN if allowed, else None."""
  if allow_nan and text.strip().lower() in ("", "nan"):
    return math.nan
  try:
    value = float(text)
  except ValueError:
    return None
  return value if 0 <= value < math.inf else None


def read_awd(path) -> Actigraphy:
  """Returns the recording in an Actiwatch (CamNtech/Philips) AWD export.

  7 header lines: subject (else the file stem), start date DD-Mon-YYYY, start
  time HH:MM[:SS][ AM|PM], epoch code, age, serial, sex. Then one epoch a
  line: a count, for some models a second value after " , " (or ",", ";",
  tab, spaces), and "M" for a marker press ("224 , 0.00 M", "834M"). Epoch
  codes are pyActigraphy's (io/awd/awd.py); the Actical manual agrees on
  1 = 15 s, 2 = 30 s, 4 = 1 min. The serial's first letter names the model:
  the second value is white light for D, L, P (Actiwatch-7, -L, -L-Plus) and
  unknown models, and pressure, sound or temperature (dropped) for I, S, T.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataError(f"{path}: no such file")
  lines = path.read_bytes().decode("latin-1").removeprefix(
      "\xef\xbb\xbf").splitlines()   # ASCII really; a UTF-8 BOM dropped
  if len(lines) < 7:
    raise DataError(f"{path} has {len(lines)} lines; an AWD file starts with "
                    "7 header lines (subject, start date, start time, epoch "
                    "code, age, serial, sex) and then one count per line")
  d = re.fullmatch(r"(\d{1,2})[-/ ]([A-Za-z]{3})[A-Za-z]*[-/ ](\d{4})",
                   lines[1].strip())
  t = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?",
                   lines[2].strip())
  try:
    date = datetime.date(int(d[3]), _MONTHS.index(d[2].lower()) + 1, int(d[1]))
  except (TypeError, ValueError):   # no match, unknown month, 31-Feb
    raise DataError(f"{path}: line 2: start date '{one_line(lines[1])}' is "
                    "not a date; expected DD-Mon-YYYY, e.g. 23-Jan-1918"
                    ) from None
  try:
    hour = int(t[1]) % 12 + 12 * (t[4].upper() == "PM") if t[4] else int(t[1])
    start = datetime.datetime.combine(date, datetime.time(hour, int(t[2]),
                                                          int(t[3] or 0)))
  except (TypeError, ValueError):
    raise DataError(f"{path}: line 3: start time '{one_line(lines[2])}' is "
                    "not a time; expected HH:MM, e.g. 13:58") from None
  code = lines[3].strip().upper()
  if code not in AWD_EPOCH_CODES:
    known = ", ".join(f"{c} ({s:g} s)" for c, s in AWD_EPOCH_CODES.items())
    raise DataError(f"{path}: line 4: epoch code '{one_line(lines[3])}' is "
                    f"unknown; expected one of {known}")
  model = re.match(r"([A-Za-z])[0-9A-Fa-f]+", lines[5].strip())
  body = "\n".join(lines[7:]).rstrip().splitlines()   # trailing blanks cut
  if not body:
    raise DataError(f"{path} has no epochs after its 7 header lines; "
                    "expected one count per line")
  values = np.empty((len(body), 2), np.float32)   # count, second value
  marker = np.array([s.rstrip().endswith("M") for s in body])
  width = 0   # values a line, the same on every line
  for i, (raw, m) in enumerate(zip(body, marker)):
    parts = re.split(r"\s*[,;\t]\s*|\s+", raw.strip()[:-1 if m else None]
                     .strip())
    numbers = [_number(p, False) for p in parts] + [0.0]
    width = width or len(parts)
    if None in numbers or len(parts) != width or width > 2:
      raise DataError(
          f"{path}: line {i + 8}: '{one_line(raw)}' is not an epoch; expected "
          "a count, optionally followed by ' M' (marker) or by ' , ' and a "
          "light value, the same on every line")
    values[i] = numbers[:2]
  light = model is None or model[1].upper() not in AWD_NOT_LIGHT
  return Actigraphy(str(path), lines[0].strip() or path.stem, start,
                    AWD_EPOCH_CODES[code], values[:, 0], marker,
                    values[:, 1] if width == 2 and light else None)


def _read_table(path: pathlib.Path, expected: str):
  """(header, rows, line numbers) of a .csv (via csv_rows) or .tsv file."""
  if path.suffix.lower() != ".tsv":
    return read_csv_rows(path, too_big_hint="split the recording into "
                         "shorter files", expected=expected)
  try:   # the same checks as csv_rows, tab-separated
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f, delimiter="\t")
      table = [(row, reader.line_num) for row in reader
               if any(c.strip() for c in row)]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise DataError(f"{path} is not a readable TSV file ({one_line(e)}); "
                    "expected UTF-8 text with tab-separated values") from None
  bad = [n for row, n in table if len(row) != len(table[0][0])]
  if len(table) < 2 or bad:
    raise DataError(f"{path}: line {bad[0]} has another number of fields than"
                    " the header; every line needs one field per column"
                    if bad else f"{path} has no rows; expected a header line "
                    f"and {expected}")
  return ([h.strip() for h in table[0][0]], [r for r, _ in table[1:]],
          [n for _, n in table[1:]])


def _column_name(name: str) -> str:   # "White_Light (lux)" -> "white light"
  name = re.sub(r"\s*[\(\[][^()\[\]]*[\)\]]\s*$", "", name.strip().lower())
  return " ".join(name.replace("_", " ").replace("-", " ").split())


def _find(names: list[str], wanted: tuple[str, ...]) -> int | None:
  return next((names.index(w) for w in wanted if w in names), None)


def _timestamps(path, cells: list[str], lines: list[int], column: str):
  """The timestamps of one column, in the one format that reads them all."""
  if len(cells) < 2:
    raise DataError(f"{path} has one row; expected at least two epochs to "
                    "tell the epoch length")
  cells = [" ".join(c.split()) for c in cells]
  results, misfit = [], 0
  for fmt in (None,) + DATE_FORMATS:   # None: ISO 8601
    got = []
    for cell in cells:
      try:
        got.append(datetime.datetime.fromisoformat(cell) if fmt is None
                   else datetime.datetime.strptime(cell, fmt))
      except ValueError:
        misfit = max(misfit, len(got))
        break
    else:
      results += [got] if got not in results else []
  if not results:
    raise DataError(
        f"{path}: line {lines[misfit]}: {column} '{cells[misfit]}' is not a "
        "date and time; expected ISO 8601 (2020-01-23 13:58:00) or e.g. "
        "23/01/2020 13:58, 01/23/2020 01:58:00 PM")
  if len(results) > 1:   # day/month vs month/day
    big = [max((abs((b - a).total_seconds()) for a, b in zip(r, r[1:])),
               default=0.0) for r in results]
    if sorted(big)[0] == sorted(big)[1]:
      raise DataError(
          f"{path}: {column} dates such as '{cells[0]}' read both as "
          "day/month and as month/day; write them as YYYY-MM-DD")
    results = [results[int(np.argmin(big))]]
  times = results[0]
  if len({t.tzinfo is None for t in times}) > 1:
    raise DataError(f"{path}: {column} mixes times with and without a UTC "
                    "offset; expected one or the other throughout")
  return times


def read_actigraphy_csv(path) -> Actigraphy:
  """Returns the recording in a CSV/TSV of timestamps and activity counts.

  Columns (any case, '_' or '-' as spaces, a "(unit)" ignored): timestamp,
  datetime, date_time or time, or date + time; the first of
  `ACTIVITY_COLUMNS` (explicit activity/counts, then ActiGraph's axis1, on
  which sleep and Choi non-wear algorithms were validated, then vector
  magnitude); optionally light, white light or lux. Timestamps are ISO 8601
  or `DATE_FORMATS`; if both day/month and month/day read the file, the
  order with the smaller largest step wins and a tie (one date all along)
  is refused. The epoch is the median step; a step of k epochs leaves k - 1
  NaN epochs; an empty or NaN cell is NaN. Subject: the file stem.
  """
  path = pathlib.Path(path).expanduser()
  header, rows, lines = _read_table(path, "one row per epoch")
  names = [_column_name(h) for h in header]
  at = [_find(names, ("date",)), _find(names, ("time",))]   # date + time
  if None in at:
    at = [_find(names, TIME_COLUMNS + ("date",))]
  if None in at:
    raise DataError(f"{path}: no timestamp column among {header}; expected "
                    "one named timestamp, datetime, date_time or time, or "
                    "date and time columns (any case)")
  cells = [" ".join(r[i] for i in at) for r in rows]
  column = " + ".join(header[i] for i in at)
  act = _find(names, ACTIVITY_COLUMNS)
  if act is None:
    raise DataError(f"{path}: no activity column among {header}; expected one"
                    " named activity, activity_counts, counts, count, axis1 "
                    "or vector magnitude (any case)")
  times = _timestamps(path, cells, lines, column)
  steps = np.array([(b - a).total_seconds() for a, b in zip(times, times[1:])])
  if np.any(steps <= 0):
    i = int(np.argmax(steps <= 0)) + 1
    raise DataError(f"{path}: line {lines[i]}: time {cells[i]} is not after "
                    f"{cells[i - 1]} on line {lines[i - 1]}; expected "
                    "increasing timestamps")
  epoch = float(np.median(steps))
  k = steps / epoch
  if np.any(np.abs(k - np.round(k)) > STEP_TOLERANCE):
    i = int(np.argmax(np.abs(k - np.round(k)) > STEP_TOLERANCE)) + 1
    raise DataError(
        f"{path}: line {lines[i]}: time {cells[i]} is {steps[i - 1]:g} s "
        f"after the previous line; expected a whole number of {epoch:g}-s "
        "epochs (the median step), missing epochs allowed")
  at = np.concatenate([[0], np.cumsum(np.round(k).astype(np.int64))])
  series = {"marker": np.zeros(at[-1] + 1, bool)}   # no marker column read
  for name, i in (("counts", act), ("light", _find(names, LIGHT_COLUMNS))):
    if i is not None:
      series[name] = np.full(at[-1] + 1, np.nan, np.float32)
      for j, (row, line) in enumerate(zip(rows, lines)):
        if (value := _number(row[i], True)) is None:
          raise DataError(
              f"{path}: line {line}: {header[i]} '{one_line(row[i])}' is not "
              "a number; expected a non-negative number (empty or NaN where "
              "missing)")
        series[name][at[j]] = value
  return Actigraphy(str(path), path.stem, times[0], epoch, **series)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(starts, ends) of the runs of True in a bool [T] array; ends exclusive."""
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def nonwear_mask(counts, epoch_seconds, min_minutes=90.0,
                 tolerance_minutes=2.0, *,
                 context_minutes=30.0) -> np.ndarray:
  """Whether the device was worn, by Choi et al. (2011) non-wear periods.

  Choi et al., Med Sci Sports Exerc 43(2):357-364: a non-wear period is at
  least `min_minutes` of zero counts, allowing interruptions of at most
  `tolerance_minutes` of nonzero counts when the `context_minutes` before and
  after one are zero (0 drops that condition). Missing (NaN) counts are
  never worn and count as zeros for the periods.

  Args:
    counts: [T] activity counts, epochs of any length.
    epoch_seconds: the epoch length.
    min_minutes, tolerance_minutes, context_minutes: Choi's 90, 2 and 30.

  Returns:
    bool [T], True where worn.
  """
  x = np.asarray(counts, np.float64).reshape(-1)
  per_minute = 60.0 / epoch_seconds
  need = max(1, math.ceil(min_minutes * per_minute - 1e-9))
  allow = math.floor(tolerance_minutes * per_minute + 1e-9)
  context = max(0, math.ceil(context_minutes * per_minute - 1e-9))
  missing = np.isnan(x)
  still = missing | (x == 0)
  filled = still.copy()
  for a, b in zip(*_runs(~still)):   # inside stillness, with context around
    if b - a <= allow and 0 < a and b < x.size and context <= min(
        a, x.size - b):
      filled[a:b] = still[a - context:a].all() and still[b:b + context].all()
  nonworn = missing.copy()
  for a, b in zip(*_runs(filled)):
    nonworn[a:b] |= b - a >= need
  return ~nonworn


@dataclasses.dataclass(frozen=True)
class DiaryPeriod:
  """One diary entry: `kind` (NIGHT, NAP, NOWEAR, ...) from start to end."""

  kind: str
  start: datetime.datetime
  end: datetime.datetime


def read_sleep_diary(path) -> tuple[DiaryPeriod, ...]:
  """The periods, in file order, of a diary CSV with TYPE, START and END
  columns (any case; times YYYY-MM-DD HH:MM:SS, END after START)."""
  path = pathlib.Path(path).expanduser()
  header, rows, lines = _read_table(path, "one row per period")
  names = [h.upper() for h in header]
  if not {"TYPE", "START", "END"} <= set(names):
    raise DataError(f"{path}: columns {header} lack TYPE, START or END; "
                    "expected a sleep diary with TYPE, START and END columns")
  kind, start, end = (names.index(c) for c in ("TYPE", "START", "END"))
  out = []
  for row, n in zip(rows, lines):
    try:
      times = [datetime.datetime.fromisoformat(row[i].strip())
               for i in (start, end)]
    except ValueError:
      raise DataError(f"{path}: line {n}: START '{one_line(row[start])}' or "
                      f"END '{one_line(row[end])}' is not a time; expected "
                      "YYYY-MM-DD HH:MM:SS") from None
    if not row[kind].strip() or times[1] <= times[0]:
      raise DataError(f"{path}: line {n}: period '{one_line(row[kind])}' "
                      f"from {times[0]} to {times[1]}; expected a TYPE and an "
                      "END after the START")
    out.append(DiaryPeriod(row[kind].strip().upper(), *times))
  return tuple(out)


def diary_epochs(periods, start, epoch_seconds, n, kind) -> np.ndarray:
  """bool [n]: the epochs overlapping a diary period of one kind.

  Args:
    periods: from read_sleep_diary.
    start, epoch_seconds, n: the recording's first epoch, epoch, length.
    kind: NIGHT, NAP, NOWEAR, ... (any case).
  """
  out = np.zeros(int(n), bool)
  for p in periods:
    if p.kind == kind.strip().upper():
      a = (p.start - start).total_seconds() / epoch_seconds
      b = (p.end - start).total_seconds() / epoch_seconds
      out[max(0, math.floor(a + 1e-9)):max(0, math.ceil(b - 1e-9))] = True
  return out


def worn_epochs(rec: Actigraphy, nonwear_minutes: float,
                diary: tuple[DiaryPeriod, ...] = ()) -> np.ndarray:
  """bool [T]: epochs with a count that are not non-wear: not in a zero run
  of `nonwear_minutes` (0 = keep every zero) nor in a diary NOWEAR period."""
  counts = np.asarray(rec.counts, np.float64)
  worn = (nonwear_mask(counts, rec.epoch_seconds, nonwear_minutes)
          if nonwear_minutes else np.isfinite(counts))
  if diary:
    worn &= ~diary_epochs(diary, rec.start, rec.epoch_seconds, counts.size,
                          "NOWEAR")
  return worn


def clock_seconds(t: datetime.datetime) -> float:
  """Seconds since midnight of `t`."""
  return float(t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6)


def is_sleep_diary(path) -> bool:
  """A CSV whose header has TYPE, START and END columns: a sleep diary, not
  a recording."""
  path = pathlib.Path(path)
  if path.suffix.lower() not in (".csv", ".tsv"):
    return False
  with open(path, errors="replace") as f:
    head = f.readline().replace("\t", ",").lower()
  return {"type", "start", "end"} <= {c.strip().strip('"')
                                      for c in head.split(",")}
