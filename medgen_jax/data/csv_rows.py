"""Reading a CSV file's text into rows, shared by every CSV reader.

The expression tables (csv_table.py) and the signal CSVs (signals.py) read
their files the same way: the standard library's csv module, UTF-8 (with or
without a byte-order mark), blank lines skipped, every row as wide as the
header, and a refusal before reading a file that would not fit in memory.
What the cells mean is each reader's business.
"""

from __future__ import annotations

import csv
import pathlib

from medgen_jax.data.expression_table import one_line
from medgen_jax.data.registry import format_bytes, memory_limit_bytes
from medgen_jax.errors import DataError

# Peak memory of reading a CSV per byte of its text (Python strings for every
# cell): 12.6 measured with tracemalloc on Golub's train file, rounded up.
MEMORY_PER_FILE_BYTE = 16


def check_size(path: pathlib.Path, too_big_hint: str,
               what: str = "table") -> None:
  """Refuses a missing file, or one whose text would not fit in memory."""
  if not path.is_file():
    raise DataError(f"{path}: no such file")
  limit = memory_limit_bytes()
  need = path.stat().st_size * MEMORY_PER_FILE_BYTE
  if limit is not None and need > limit:
    raise DataError(
        f"{path}: reading this {what} takes about {format_bytes(need)}, more "
        f"than the {format_bytes(limit)} this machine allows for one "
        f"dataset; {too_big_hint}")


def read_csv_rows(path: pathlib.Path, *, too_big_hint: str,
                  expected: str, delimiter: str = ","
                  ) -> tuple[list[str], list[list[str]], list[int]]:
  """(header, rows, line numbers) of a CSV; blank lines are skipped.

  Args:
    path: the file.
    too_big_hint: what to do instead when the file exceeds the memory limit,
      e.g. "convert it to .h5ad (anndata)".
    expected: what the rows should be, for the message of an empty file,
      e.g. "one line per gene or sample".
    delimiter: "," (CSV) or "\t" (TSV).
  """
  kind = "TSV" if delimiter == "\t" else "CSV"
  check_size(path, too_big_hint, kind)
  rows, lines = [], []
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f, delimiter=delimiter)
      header = next(reader, None)
      for row in reader:
        if any(cell.strip() for cell in row):
          rows.append(row)
          lines.append(reader.line_num)
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    sep = "tab" if delimiter == "\t" else "comma"
    raise DataError(f"{path} is not a readable {kind} file ({one_line(e)}); "
                    f"expected UTF-8 text with {sep}-separated values"
                    ) from None
  if not header or not any(h.strip() for h in header) or not rows:
    raise DataError(f"{path} has {'no header' if not header else 'no rows'}; "
                    f"expected a header line and {expected}")
  for row, line in zip(rows, lines):
    if len(row) != len(header):
      raise DataError(f"{path}: line {line} has {len(row)} fields but the "
                      f"header has {len(header)}; every line needs one field "
                      "per column")
  return [h.strip() for h in header], rows, lines
