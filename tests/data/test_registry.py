"""The dataset registry's routing: prefixes, kinds of data, companion files."""

import ml_collections
import numpy as np
import pytest

from medgen_jax.data import registry
from medgen_jax.data.base import Dataset, Split
from medgen_jax.errors import DataError, UnknownNameError


def _table(source):
  x = np.arange(6, dtype=np.float32).reshape(3, 2)
  return Dataset("t", {"train": Split({"x": x})}, source=source)


@pytest.fixture
def formats():
  """Registers a plain and a kind-qualified reader of '.zz' (and a prefix)."""
  seen = []

  def plain(path, cfg):
    seen.append(("plain", path.name))
    return _table(str(path))

  def series(path, cfg):
    seen.append(("series", path.name))
    return _table(str(path))

  def prefixed(rest, cfg):
    seen.append(("prefix", rest))
    return _table(rest)

  registry.FILE_FORMATS.register(".zz", plain)
  registry.FILE_FORMATS.register("testkind:.zz", series)
  registry.FILE_FORMATS.register("testkind:.yy", series)
  registry.PREFIXES.register("testpfx", prefixed)
  yield seen
  for key in (".zz", "testkind:.zz", "testkind:.yy"):
    registry.FILE_FORMATS._entries.pop(key)
  registry.PREFIXES._entries.pop("testpfx")


def _cfg(name, kind=None):
  c = ml_collections.ConfigDict({"name": name})
  if kind is not None:
    c.kind = kind
  return c


def test_a_family_of_a_kind_gets_its_reader(formats, tmp_path):
  f = tmp_path / "a.zz"
  f.write_text("")
  registry.load_dataset(_cfg(str(f)))
  registry.load_dataset(_cfg(str(f), kind="testkind"))
  assert formats == [("plain", "a.zz"), ("series", "a.zz")]


def test_a_kind_only_suffix_is_unknown_to_other_families(formats, tmp_path):
  f = tmp_path / "a.yy"
  f.write_text("")
  with pytest.raises(DataError, match="unknown file type '.yy'"):
    registry.load_dataset(_cfg(str(f)))
  registry.load_dataset(_cfg(str(f), kind="testkind"))
  assert formats == [("series", "a.yy")]


def test_a_record_named_without_its_suffix_is_read_through_it(formats,
                                                              tmp_path):
  (tmp_path / "rec.yy").write_text("")
  registry.load_dataset(_cfg(str(tmp_path / "rec"), kind="testkind"))
  assert formats == [("series", "rec.yy")]
  with pytest.raises(DataError, match="no such file"):
    registry.load_dataset(_cfg(str(tmp_path / "other"), kind="testkind"))


def test_prefixes_route_the_rest_of_the_name(formats):
  ds = registry.load_dataset(_cfg("testpfx:some/where"))
  assert formats == [("prefix", "some/where")] and ds.source == "some/where"
  assert "testpfx:NAME" in registry.dataset_names()
  with pytest.raises(UnknownNameError):
    registry.load_dataset(_cfg("nopfx"))
