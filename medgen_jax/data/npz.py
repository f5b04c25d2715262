"""A safe reader of `.npz` files (zip archives of `.npy` arrays).

`np.load` trusts each array's header: a crafted file whose header declares
10^12 images makes numpy try to allocate them before it notices that the
bytes are not there. `read_npz` reads every member's `.npy` header first and
refuses, with a one-line DataError naming the file and key,

  * an array whose declared size exceeds the bytes its zip member holds,
  * object dtypes (pickled Python objects are never loaded),
  * arrays that together would exceed `memory_limit_bytes()`,
  * files that are not zip archives, and damaged members (bad CRC, truncated
    data, a malformed header).

Only then does it allocate each array, once, and fill it from the archive.
"""

from __future__ import annotations

import io
import math
import pathlib
import zipfile
import zlib

import numpy as np

from medgen_jax.data.registry import format_bytes, memory_limit_bytes
from medgen_jax.errors import DataError

_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 1 << 24  # bytes read at once from a member
_HEADER_BYTES = 1 << 16  # numpy refuses .npy headers over 10000 bytes
# What reading a member may raise on a damaged or hostile file (zipfile
# raises NotImplementedError for a compression method it cannot decode).
_DAMAGED = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
            NotImplementedError, RuntimeError, SyntaxError)


def _one_line(text: object) -> str:
  return " ".join(str(text).split())


def _header(prefix: bytes, path, key: str, what: str):
  """Parses a .npy header; returns (shape, fortran_order, dtype, length)."""
  f = io.BytesIO(prefix)
  version = np.lib.format.read_magic(f)
  if version == (1, 0):
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
  elif version == (2, 0):
    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
  else:
    raise DataError(
        f"{path}: array '{key}' uses .npy format version "
        f"{version[0]}.{version[1]}, which medgen_jax does not read (1.0 and "
        f"2.0 only); replace it with {what}")
  return tuple(shape), fortran, dtype, f.tell()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path, key: str,
                 what: str) -> np.ndarray:
  """Checks one member's header against its size, then reads it."""
  with zf.open(info) as f:
    # The header is parsed from a bounded prefix, so a crafted header length
    # cannot make us read (or decompress) more than _HEADER_BYTES.
    prefix = f.read(min(info.file_size, _HEADER_BYTES))
    shape, fortran, dtype, header = _header(prefix, path, key, what)
    if dtype.hasobject:
      raise DataError(
          f"{path}: array '{key}' holds Python objects (dtype {dtype}), which "
          f"are never unpickled; a data file must hold plain arrays; replace "
          f"it with {what}")
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    available = info.file_size - header
    if declared > available:
      raise DataError(
          f"{path}: array '{key}' declares shape {shape} of {dtype} "
          f"({declared} bytes) but the file holds only {max(available, 0)} "
          f"bytes of it (a damaged or crafted file); replace it with {what}")
    buf = bytearray(declared)
    view = memoryview(buf)
    head = prefix[header:header + declared]
    view[:len(head)] = head
    done = len(head)
    while done < declared:
      got = f.readinto(view[done:done + _CHUNK])
      if not got:
        raise EOFError(f"it ends after {done} of {declared} bytes")
      done += got
    if len(prefix) - header > declared or f.read(1):  # read(1): CRC check
      raise ValueError(f"it has more bytes than its header declares "
                       f"({shape} of {dtype})")
  array = np.frombuffer(buf, dtype=dtype)
  return array.reshape(shape, order="F" if fortran else "C")


def read_npz(path, *, what: str) -> dict[str, np.ndarray]:
  """Reads every array of an .npz file safely (see the module docstring).

  Args:
    path: the file.
    what: the file the user should use instead, for the fix of a message,
      e.g. "the official MedMNIST file".

  Returns:
    key (member name without ".npy") -> array. Members that are not .npy
    files are skipped.

  Raises:
    DataError: the file is missing, not an .npz archive, damaged, holds
      objects, or declares arrays it does not hold or memory cannot hold.
  """
  path = pathlib.Path(path)
  try:
    zf = zipfile.ZipFile(path)
  except FileNotFoundError:
    raise DataError(f"{path} not found; place {what} there") from None
  except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
    try:
      with open(path, "rb") as f:
        single = f.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    except OSError:
      single = False
    if single:
      raise DataError(
          f"{path} holds a single array (.npy), not an .npz archive of named "
          f"arrays; replace it with {what}") from None
    raise DataError(
        f"{path} is not a readable .npz file ({_one_line(e)}); replace it "
        f"with {what}") from None
  with zf:
    members = [i for i in zf.infolist()
               if i.filename.endswith(".npy") and not i.is_dir()]
    limit = memory_limit_bytes()
    total = sum(i.file_size for i in members)
    if limit is not None and total > limit:
      raise DataError(
          f"{path}: its arrays take {format_bytes(total)}, more than the "
          f"{format_bytes(limit)} this machine allows for one dataset; use a "
          "smaller file or a machine with more memory")
    arrays = {}
    for info in members:
      key = info.filename[:-len(".npy")]
      try:
        arrays[key] = _read_member(zf, info, path, key, what)
      except DataError:
        raise
      except _DAMAGED as e:
        raise DataError(
            f"{path} is a damaged .npz file (array '{key}': {_one_line(e)}); "
            f"replace it with {what}") from None
  return arrays
