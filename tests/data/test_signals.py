"""Reading recordings: WFDB records (shared and synthetic), CSV signals,
channel selection, and the one-line errors of damaged files."""

import collections

import numpy as np
import pytest

from medgen_jax.data import signals
from medgen_jax.data.signals import (BEAT_SYMBOLS, Recording, annotation_files,
                                     read_signal_csv, read_wfdb,
                                     select_channels)
from medgen_jax.errors import DataError

wfdb = pytest.importorskip("wfdb")


def _raises(cls, fn, *args, **kwargs):
  """Runs fn, expects `cls`, returns its one-line message."""
  with pytest.raises(cls) as info:
    fn(*args, **kwargs)
  message = str(info.value)
  assert "\n" not in message
  return message


def write_record(folder, name, x, fs, names, units, beats=None, symbols=None,
                 ext="atr"):
  """Writes a WFDB record (16-bit) [and annotations] into `folder`."""
  wfdb.wrsamp(name, fs=fs, units=list(units), sig_name=list(names),
              p_signal=np.asarray(x, np.float64), fmt=["16"] * len(names),
              write_dir=str(folder))
  if beats is not None:
    wfdb.wrann(name, ext, np.asarray(beats), symbol=list(symbols), fs=fs,
               write_dir=str(folder))
  return folder / name


def _wave(n=2000, fs=100.0):
  t = np.arange(n) / fs
  return np.stack([np.sin(2 * np.pi * t), 80 + 40 * np.cos(2 * np.pi * t)], 1)


# --- shared PhysioNet records ------------------------------------------------


def test_mitbih_100(shared_data_dir):
  path = shared_data_dir / "mitbih_100" / "100"
  rec = read_wfdb(path)
  assert rec.rate == 360.0 and rec.channels == ("MLII", "V5")
  assert rec.units == ("mV", "mV") and rec.signals.shape == (650000, 2)
  np.testing.assert_allclose(rec.signals[0], [-0.145, -0.065])
  # 2274 annotations; the rhythm change '+' is not a beat.
  ann = wfdb.rdann(str(path), "atr")
  assert len(ann.sample) == 2274
  assert collections.Counter(rec.beat_symbols) == {"N": 2239, "A": 33, "V": 1}
  beat = [s != "+" for s in ann.symbol]
  np.testing.assert_array_equal(rec.beats, np.asarray(ann.sample)[beat])
  assert read_wfdb(str(path) + ".hea").signals.shape == (650000, 2)


def test_vitals_record_at_its_frame_rate_with_gaps(shared_data_dir):
  path = shared_data_dir / "physionet_vitals" / "03700181"
  rec = read_wfdb(path)
  assert rec.rate == 125.0 and rec.channels == ("MCL1", "ABP", "RESP")
  assert rec.units[1] == "mmHg" and rec.signals.shape == (75000, 3)
  abp = rec.signals[:, 1]
  assert 15 < np.nanmin(abp) < 20 and 60 < np.nanmax(abp) < 66  # 17-64 mmHg
  assert np.isnan(rec.signals).sum(axis=0).tolist() == [0, 0, 4]
  assert rec.beats is None  # no .atr: no annotations unless asked
  assert annotation_files(path) == ["gqrsh", "sqrs"]
  # gqrs -H writes sample numbers at 500 Hz; they are moved to 125 Hz.
  gqrs = read_wfdb(path, "gqrsh")
  raw = wfdb.rdann(str(path), "gqrsh")
  assert raw.fs == 500 and gqrs.beats.size == 1150
  np.testing.assert_array_equal(gqrs.beats,
                                np.round(np.asarray(raw.sample) / 4))
  assert gqrs.beats.max() < 75000
  assert read_wfdb(path, ".sqrs").beats.size == 1195


def test_other_storage_formats_and_many_leads(shared_data_dir):
  folder = shared_data_dir / "physionet_vitals"
  mat = read_wfdb(folder / "a103l")  # signals in a .mat file
  assert mat.rate == 250.0 and mat.channels == ("II", "V", "PLETH")
  assert mat.signals.shape == (82500, 3) and np.isfinite(mat.signals).all()
  v102s = read_wfdb(folder / "v102s")
  assert np.isnan(v102s.signals).sum() == 23
  ptb = read_wfdb(folder / "s0010_re")
  assert ptb.rate == 1000.0 and ptb.signals.shape == (38400, 15)
  assert annotation_files(folder / "s0010_re") == []  # .xyz holds signals


def test_beat_symbols_are_wfdbs_qrs_codes():
  from wfdb.io import annotation
  qrs = {label.symbol for label in annotation.ann_labels
         if annotation.is_qrs[label.label_store]}
  assert BEAT_SYMBOLS == qrs
  assert not {"+", "~", "|", '"', "["} & BEAT_SYMBOLS


# --- synthetic WFDB records --------------------------------------------------


def test_synthetic_record_with_gap_and_annotations(tmp_path):
  x = _wave()
  x[500:505, 1] = np.nan
  path = write_record(tmp_path, "syn", x, 100, ["ECG", "ABP"], ["mV", "mmHg"],
                      beats=[10, 50, 110, 150], symbols=["N", "+", "V", "~"])
  rec = read_wfdb(path)
  np.testing.assert_allclose(rec.signals[:, 0], x[:, 0], atol=1e-4)
  assert np.isnan(rec.signals[:, 1]).sum() == 5
  assert np.isnan(rec.signals[500:505, 1]).all()
  assert rec.beats.tolist() == [10, 110] and rec.beat_symbols == ("N", "V")
  wfdb.wrann("syn", "qrs", np.array([20, 70]), symbol=["N", "N"], fs=100,
             write_dir=str(tmp_path))
  assert read_wfdb(path, "qrs").beats.tolist() == [20, 70]
  assert annotation_files(path) == ["atr", "qrs"]
  message = _raises(DataError, read_wfdb, path, "ecg")
  assert "syn.ecg" in message and "atr, qrs" in message


def test_several_samples_per_frame_are_averaged(tmp_path):
  fast = np.arange(40, dtype=np.float64)  # 2 samples per frame
  fast[10] = np.nan  # frame 5 becomes a gap
  slow = np.arange(20, dtype=np.float64) * 10
  wfdb.wrsamp("spf", fs=10, units=["mV", "mV"], sig_name=["fast", "slow"],
              e_p_signal=[fast, slow], samps_per_frame=[2, 1],
              fmt=["16", "16"], adc_gain=[100.0, 100.0], baseline=[0, 0],
              write_dir=str(tmp_path))
  rec = read_wfdb(tmp_path / "spf")
  assert rec.rate == 10.0 and rec.signals.shape == (20, 2)
  expected = np.arange(20) * 2 + 0.5
  expected[5] = np.nan
  np.testing.assert_allclose(rec.signals[:, 0], expected, atol=1e-6)
  np.testing.assert_allclose(rec.signals[:, 1], slow, atol=1e-6)


def test_multi_segment_record_is_joined(tmp_path):
  x = _wave(1000)
  write_record(tmp_path, "seg1", x, 100, ["ECG", "ABP"], ["mV", "mmHg"])
  write_record(tmp_path, "seg2", x * 2, 100, ["ECG", "ABP"], ["mV", "mmHg"])
  (tmp_path / "multi.hea").write_text("multi/2 2 100 2000\nseg1 1000\n"
                                      "seg2 1000\n")
  rec = read_wfdb(tmp_path / "multi")
  assert rec.signals.shape == (2000, 2) and rec.channels == ("ECG", "ABP")
  np.testing.assert_allclose(rec.signals[1000:], 2 * x, atol=2e-3)
  (tmp_path / "broken.hea").write_text("broken/2 2 100 2000\nseg1 1000\n"
                                       "seg9 1000\n")
  assert "seg9.hea" in _raises(DataError, read_wfdb, tmp_path / "broken")


@pytest.fixture
def good(tmp_path):
  return write_record(tmp_path, "good", _wave(), 100, ["ECG", "ABP"],
                      ["mV", "mmHg"])


def _damaged(good, name, header_text=None, dat=True):
  folder = good.parent
  text = (good.parent / "good.hea").read_text().replace("good", name)
  (folder / f"{name}.hea").write_text(header_text(text) if header_text
                                      else text)
  if dat:
    (folder / f"{name}.dat").write_bytes((folder / "good.dat").read_bytes())
  return folder / name


def test_truncated_header(good):
  path = _damaged(good, "trunc", lambda t: t.splitlines()[0] + "\n")
  message = _raises(DataError, read_wfdb, path)
  assert "trunc.hea" in message and "truncated" in message
  path = _damaged(good, "cut", lambda t: t[:45])
  assert "cut.hea" in _raises(DataError, read_wfdb, path)
  path = _damaged(good, "junk", lambda t: "this is not a header\n")
  assert "junk.hea" in _raises(DataError, read_wfdb, path)
  path = _damaged(good, "empty", lambda t: "")
  assert "empty.hea" in _raises(DataError, read_wfdb, path)


def test_missing_signal_file(good):
  path = _damaged(good, "nodat", dat=False)
  message = _raises(DataError, read_wfdb, path)
  assert "nodat.dat" in message and "no such file" in message
  assert "absent.hea" in _raises(DataError, read_wfdb, good.parent / "absent")


def test_zero_rate_and_zero_length(good):
  path = _damaged(good, "zero", lambda t: t.replace("zero 2 100", "zero 2 0"))
  message = _raises(DataError, read_wfdb, path)
  assert "zero.hea" in message and "0 Hz" in message
  path = _damaged(good, "none", lambda t: t.replace(" 100 2000", " 100 0"))
  assert "none.hea" in _raises(DataError, read_wfdb, path)


def test_truncated_signal_file(good):
  path = _damaged(good, "short")
  data = (good.parent / "short.dat").read_bytes()
  (good.parent / "short.dat").write_bytes(data[:1000])
  assert "short.hea" in _raises(DataError, read_wfdb, path)


def test_missing_wfdb_package_is_one_line(good, monkeypatch):
  import builtins
  real_import = builtins.__import__

  def no_wfdb(name, *args, **kwargs):
    if name == "wfdb":
      raise ImportError("no wfdb")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_wfdb)
  message = _raises(DataError, read_wfdb, good)
  assert "medgen_jax[series]" in message and "good.hea" in message


# --- channel selection -------------------------------------------------------


def test_select_channels_by_name_in_any_case():
  rec = Recording("r", np.arange(12.0).reshape(4, 3), ("MLII", "V5", "ABP"),
                  ("mV", "mV", "mmHg"), 100.0, source="r.hea")
  sel = select_channels(rec, "abp, mlii")
  assert sel.channels == ("ABP", "MLII") and sel.units == ("mmHg", "mV")
  np.testing.assert_array_equal(sel.signals, rec.signals[:, [2, 0]])
  assert select_channels(rec, "") is rec
  message = _raises(DataError, select_channels, rec, "MLII,II")
  assert "'II'" in message and "MLII, V5, ABP" in message and "r.hea" in message


# --- CSV signals -------------------------------------------------------------


def _csv(tmp_path, text, name="sig.csv"):
  path = tmp_path / name
  path.write_text(text)
  return path


def test_csv_with_time_column(tmp_path):
  rows = "\n".join(f"{i * 0.004:.3f},{i},{2 * i}" for i in range(10))
  rec = read_signal_csv(_csv(tmp_path, "Time,ECG (mV),ABP [mmHg]\n" + rows))
  assert rec.rate == pytest.approx(250.0)
  assert rec.channels == ("ECG", "ABP") and rec.units == ("mV", "mmHg")
  np.testing.assert_array_equal(rec.signals[:, 1], 2 * np.arange(10))
  # A rate that agrees is fine; one that does not is refused.
  assert read_signal_csv(tmp_path / "sig.csv", 250.0).rate == pytest.approx(
      250.0)
  assert "--rate 125" in _raises(DataError, read_signal_csv,
                                 tmp_path / "sig.csv", 125.0)


def test_csv_with_rate_and_nan_cells(tmp_path):
  path = _csv(tmp_path, "a,b\n1,2\n,3\nNaN,4\n5,NA\n6,7\n")
  message = _raises(DataError, read_signal_csv, path)
  assert "sig.csv" in message and "--rate HZ" in message
  rec = read_signal_csv(path, 50.0)
  assert rec.rate == 50.0 and rec.channels == ("a", "b")
  expected = np.array([[1, 2], [np.nan, 3], [np.nan, 4], [5, np.nan], [6, 7]])
  np.testing.assert_array_equal(rec.signals, expected)


def test_csv_named_time_column(tmp_path):
  path = _csv(tmp_path, "clock,x\n0,1\n0.5,2\n1.0,3\n")
  assert read_signal_csv(path, time_column="CLOCK").rate == 2.0
  message = _raises(DataError, read_signal_csv, path, time_column="when")
  assert "'when'" in message and "clock, x" in message


def test_csv_uneven_or_decreasing_time_names_the_line(tmp_path):
  path = _csv(tmp_path, "t,x\n0,1\n0.01,1\n0.02,1\n0.035,1\n0.04,1\n")
  message = _raises(DataError, read_signal_csv, path)
  assert "line 5" in message and "evenly spaced" in message
  path = _csv(tmp_path, "t,x\n0,1\n0.01,1\n0.01,1\n", "dup.csv")
  message = _raises(DataError, read_signal_csv, path)
  assert "dup.csv: line 4" in message and "increasing" in message
  path = _csv(tmp_path, "t,x\n0,1\n,1\n", "gap.csv")
  assert "line 3" in _raises(DataError, read_signal_csv, path)


def test_csv_bad_cells_and_empty_files(tmp_path):
  path = _csv(tmp_path, "a,b\n1,2\n3,oops\n")
  message = _raises(DataError, read_signal_csv, path, 10.0)
  assert "line 3" in message and "'b'" in message and "'oops'" in message
  path = _csv(tmp_path, "a,b\n1,inf\n", "inf.csv")
  assert "line 2" in _raises(DataError, read_signal_csv, path, 10.0)
  path = _csv(tmp_path, "", "empty.csv")
  assert "empty.csv" in _raises(DataError, read_signal_csv, path, 10.0)
  path = _csv(tmp_path, "a,b\n", "header.csv")
  assert "header.csv has no rows" in _raises(DataError, read_signal_csv, path,
                                             10.0)
  path = _csv(tmp_path, "a,b\n1,2,3\n", "ragged.csv")
  assert "line 2" in _raises(DataError, read_signal_csv, path, 10.0)
  path = _csv(tmp_path, "time\n0\n1\n", "only_time.csv")
  assert "no signal column" in _raises(DataError, read_signal_csv, path)


def test_recording_checks_its_own_shape():
  with pytest.raises(ValueError):
    Recording("r", np.zeros((4, 2)), ("a",), ("",), 10.0)
  with pytest.raises(ValueError):
    Recording("r", np.zeros((4, 1)), ("a",), ("",), 0.0)
  with pytest.raises(ValueError):
    Recording("r", np.zeros((4, 1)), ("a",), ("",), 1.0,
              beats=np.array([5]), beat_symbols=("N",))
  assert signals.TIME_COLUMNS[0] == "time"
