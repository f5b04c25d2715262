"""The safe .npz reader: same arrays as np.load, and hostile files refused."""

import io
import zipfile

import numpy as np
import pytest

from medgen_jax.data import npz
from medgen_jax.errors import DataError

WHAT = "the official file"


def _member(header: dict, data: bytes = b"", version=(2, 0)) -> bytes:
  """The bytes of one .npy member with a hand-written header."""
  buf = io.BytesIO()
  write = {(1, 0): np.lib.format.write_array_header_1_0,
           (2, 0): np.lib.format.write_array_header_2_0}[version]
  write(buf, header)
  return buf.getvalue() + data


def _zip(path, members: dict, compression=zipfile.ZIP_STORED):
  with zipfile.ZipFile(path, "w", compression=compression) as zf:
    for name, data in members.items():
      zf.writestr(name, data)
  return path


def test_reads_what_np_load_reads(tmp_path):
  arrays = {
      "images": np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5),
      "labels": np.array([[1], [0]], np.uint8),
      "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
      "big_endian": np.arange(4, dtype=">i4"),
      "mask": np.array([[True, False]]),
      "empty": np.zeros((0, 3), np.float32),
      "scalar": np.float64(2.5),
  }
  for save in (np.savez, np.savez_compressed):
    path = tmp_path / f"{save.__name__}.npz"
    save(path, **arrays)
    got = npz.read_npz(path, what=WHAT)
    assert sorted(got) == sorted(arrays)
    with np.load(path) as expected:
      for key in arrays:
        np.testing.assert_array_equal(got[key], expected[key])
        assert got[key].dtype == expected[key].dtype
        assert got[key].shape == expected[key].shape
    assert got["fortran"].flags.f_contiguous
    got["images"][0, 0, 0] = 7  # writable, like np.load's arrays


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED,
                                         zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_header_bomb_is_refused_without_allocating(tmp_path, compression,
                                                   version):
  # A real archive, with its image member replaced by one whose header
  # declares 10^12 images of 28x28 but which holds 64 bytes.
  real = tmp_path / "real.npz"
  np.savez(real, train_images=np.zeros((2, 28, 28), np.uint8),
           train_labels=np.zeros((2, 1), np.uint8))
  with zipfile.ZipFile(real) as zf:
    labels = zf.read("train_labels.npy")
  bomb = _member({"descr": "|u1", "fortran_order": False,
                  "shape": (10**12, 28, 28)}, b"\0" * 64, version)
  path = _zip(tmp_path / "bomb.npz", {"train_images.npy": bomb,
                                      "train_labels.npy": labels},
              compression)
  with pytest.raises(DataError) as err:
    npz.read_npz(path, what=WHAT)  # a MemoryError if it tried to allocate
  msg = str(err.value)
  assert "\n" not in msg
  assert str(path) in msg and "'train_images'" in msg
  assert "declares shape (1000000000000, 28, 28)" in msg
  assert "holds only 64 bytes" in msg and WHAT in msg


def test_truncated_array(tmp_path):
  data = np.arange(50, dtype=np.int64).tobytes()  # 50 of the 100 declared
  path = _zip(tmp_path / "t.npz", {"x.npy": _member(
      {"descr": "<i8", "fortran_order": False, "shape": (100,)}, data)})
  with pytest.raises(DataError, match="'x' declares shape \\(100,\\) of int64 "
                     "\\(800 bytes\\) but the file holds only 400 bytes"):
    npz.read_npz(path, what=WHAT)


def test_more_bytes_than_declared(tmp_path):
  data = np.arange(10, dtype=np.int64).tobytes()
  path = _zip(tmp_path / "t.npz", {"x.npy": _member(
      {"descr": "<i8", "fortran_order": False, "shape": (4,)}, data)})
  with pytest.raises(DataError, match="damaged .npz file.*'x'.*more bytes"):
    npz.read_npz(path, what=WHAT)


def test_object_arrays_are_never_unpickled(tmp_path):
  path = tmp_path / "objects.npz"
  np.savez(path, labels=np.array([{"a": 1}, None], dtype=object))
  with pytest.raises(DataError, match="'labels' holds Python objects"):
    npz.read_npz(path, what=WHAT)


def test_not_an_npz(tmp_path):
  html = tmp_path / "page.npz"
  html.write_text("<html>not found</html>")
  with pytest.raises(DataError, match=f"{html} is not a readable .npz file.*"
                     f"replace it with {WHAT}"):
    npz.read_npz(html, what=WHAT)
  single = tmp_path / "single.npz"
  with open(single, "wb") as f:
    np.save(f, np.zeros(3))
  with pytest.raises(DataError, match="holds a single array"):
    npz.read_npz(single, what=WHAT)
  with pytest.raises(DataError, match="not found"):
    npz.read_npz(tmp_path / "absent.npz", what=WHAT)


def test_damaged_member(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, x=np.full(1000, 7, np.int64))
  raw = bytearray(path.read_bytes())
  at = raw.find(np.full(8, 7, np.int64).tobytes())  # inside the data
  raw[at + 3] ^= 0xFF
  path.write_bytes(bytes(raw))
  with pytest.raises(DataError, match="damaged .npz file \\(array 'x': .*CRC"):
    npz.read_npz(path, what=WHAT)


def test_malformed_header(tmp_path):
  broken = b"\x93NUMPY\x01\x00\x10\x00{'descr': oops"
  path = _zip(tmp_path / "h.npz", {"x.npy": broken})
  with pytest.raises(DataError, match="damaged .npz file \\(array 'x'"):
    npz.read_npz(path, what=WHAT)


def test_arrays_larger_than_memory_are_refused(tmp_path, monkeypatch):
  path = tmp_path / "big.npz"
  np.savez(path, x=np.zeros(1000, np.float64))
  monkeypatch.setattr(npz, "memory_limit_bytes", lambda: 4000)
  with pytest.raises(DataError, match="arrays take 8128 bytes, more than the "
                     "4000 bytes this machine allows"):
    npz.read_npz(path, what=WHAT)
  monkeypatch.setattr(npz, "memory_limit_bytes", lambda: None)  # unknown
  assert npz.read_npz(path, what=WHAT)["x"].shape == (1000,)
