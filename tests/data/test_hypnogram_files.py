"""Reading hypnograms: text, CSV/TSV and EDF+ files, the shared YASA
hypnograms, and the one-line errors of files that are not hypnograms."""

import datetime
import sys

import numpy as np
import pytest

from medgen_jax.data.hypnogram_files import Hypnogram, read_hypnogram
from medgen_jax.data.sleep_stages import N1, N2, N3, REM, UNKNOWN, WAKE
from medgen_jax.errors import DataError
from file_helpers import raises_one_line as _raises, write_file as _write


# ---------------------------------------------------------------------------
# Text files.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["h.txt", "h.hyp", "h", "h.csv"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_integers_with_comments_and_blank_lines(tmp_path, name, newline):
  path = _write(tmp_path, name, "# scored by hand\n% 30-s epochs\n0\n\n1\n2\n"
                "  3  \n4\n-1\n-2\n2\n", newline)
  hyp = read_hypnogram(path)
  assert isinstance(hyp, Hypnogram)
  np.testing.assert_array_equal(hyp.stages, [0, 1, 2, 3, 4, -1, -1, 2])
  assert hyp.stages.dtype == np.int8
  assert hyp.epoch_seconds == 30.0 and hyp.start is None
  assert hyp.source == str(path) and hyp.num_epochs == 8


def test_labels_mixed_with_integers(tmp_path):
  tokens = ["W", "Wake", "wake", "N1", "S1", "N2", "n3", "S3", "S4", "R",
            "REM", "?", "MT", "2.0", "0", "-1", "Sleep stage 4", "4"]
  hyp = read_hypnogram(_write(tmp_path, "h.txt", "\n".join(tokens)))
  np.testing.assert_array_equal(hyp.stages, [
      WAKE, WAKE, WAKE, N1, N1, N2, N3, N3, N3, REM, REM, UNKNOWN, UNKNOWN,
      N2, WAKE, UNKNOWN, N3, REM])


def test_epoch_seconds_is_passed_on(tmp_path):
  hyp = read_hypnogram(_write(tmp_path, "h.txt", "W\nN2\n"), epoch_seconds=20)
  assert hyp.epoch_seconds == 20.0


@pytest.mark.parametrize("name,text", [
    ("h.csv", "epoch,Stage,confidence\n1,W,0.9\n2,N2,0.8\n3,REM,0.7\n"),
    ("h.csv", "# exported\nonset;sleep_stage\n0;0\n30;2\n60;4\n"),
    ("h.tsv", "onset\tSleep Stage\n0\tW\n30\t2\n60\tR\n"),
    ("h.txt", "epoch\thypnogram\n1\t0\n2\tN2\n3\t4\n"),
    ("h.csv", "Label\nW\nN2\nREM\n"),
])
def test_tables_with_a_stage_column(tmp_path, name, text):
  hyp = read_hypnogram(_write(tmp_path, name, text))
  np.testing.assert_array_equal(hyp.stages, [WAKE, N2, REM])


def test_table_without_a_stage_column_is_refused(tmp_path):
  path = _write(tmp_path, "h.csv", "epoch,score\n1,W\n")
  message = _raises(read_hypnogram, path)
  assert str(path) in message and "line 1" in message
  assert "'score'" in message and "stage" in message


def test_table_row_without_the_stage_field_is_refused(tmp_path):
  path = _write(tmp_path, "h.csv", "epoch,stage\n1,W\n2\n3,N2\n")
  message = _raises(read_hypnogram, path)
  assert str(path) in message and "line 3" in message


@pytest.mark.parametrize("text,line,token", [
    ("0\n1\n7\n", 3, "7"),
    ("# c\nW\nN2\nDeep\n", 4, "Deep"),
    ("stage\nW\nXX\n", 3, "XX"),
])
def test_unknown_token_names_file_line_and_labels(tmp_path, text, line, token):
  path = _write(tmp_path, "h.txt", text)
  message = _raises(read_hypnogram, path)
  assert str(path) in message and f"line {line}" in message
  assert f"'{token}'" in message
  assert "W, Wake, N1" in message and "REM" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n% and one\n",
                                  "stage\n"])
def test_empty_files_are_refused(tmp_path, text):
  path = _write(tmp_path, "h.txt", text)
  message = _raises(read_hypnogram, path)
  assert str(path) in message


def test_all_unknown_is_refused_but_some_unknown_is_masked(tmp_path):
  path = _write(tmp_path, "h.txt", "?\n-1\nMT\n")
  message = _raises(read_hypnogram, path)
  assert str(path) in message and "all 3 epochs" in message
  hyp = read_hypnogram(_write(tmp_path, "g.txt", "?\n-1\nMT\n-2\nW\n"))
  assert (hyp.stages == UNKNOWN).mean() == 0.8


def test_other_files_are_refused(tmp_path):
  assert "no such file" in _raises(read_hypnogram, tmp_path / "absent.txt")
  xml = _write(tmp_path, "h.xml", "<x/>")
  message = _raises(read_hypnogram, xml)
  assert str(xml) in message and "'.xml'" in message and ".edf" in message
  binary = tmp_path / "h.txt"
  binary.write_bytes(b"\x00\x01\xff\xfe" * 10)
  assert "not a text file" in _raises(read_hypnogram, binary)
  assert "epoch_seconds" in _raises(read_hypnogram, _write(
      tmp_path, "ok.txt", "W\n"), epoch_seconds=0)


# ---------------------------------------------------------------------------
# EDF+ hypnograms.
# ---------------------------------------------------------------------------


def _write_edf(path, annotations, dummy_signal=False, startdate=True):
  """An EDF+ file holding only annotations (or one dummy signal)."""
  edfio = pytest.importorskip("edfio")
  signals = ([edfio.EdfSignal(np.zeros(600), sampling_frequency=1.0,
                              label="dummy")] if dummy_signal else [])
  recording = (edfio.Recording(startdate=datetime.date(1989, 4, 24))
               if startdate else None)
  edfio.Edf(signals, recording=recording,
            starttime=datetime.time(16, 13),
            annotations=[edfio.EdfAnnotation(*a) for a in annotations]
            ).write(path)
  return path


SLEEP_EDF = [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1"),
             (100, None, "Lights off"), (120, 90, "Sleep stage 4"),
             (210, 30, "Sleep stage 3"), (270, 30, "Sleep stage R"),
             (300, 60, "Sleep stage 2"), (360, 30, "Movement time"),
             (390, 30, "Sleep stage ?")]


@pytest.mark.parametrize("dummy_signal", [False, True])
def test_edf_annotations_become_epochs(tmp_path, dummy_signal):
  path = _write_edf(tmp_path / "SC4001EC-Hypnogram.edf", SLEEP_EDF,
                    dummy_signal)
  hyp = read_hypnogram(path)
  np.testing.assert_array_equal(hyp.stages, [
      WAKE, WAKE, N1, UNKNOWN, N3, N3, N3, N3, UNKNOWN, REM, N2, N2,
      UNKNOWN, UNKNOWN])
  assert hyp.epoch_seconds == 30.0
  assert hyp.start == datetime.datetime(1989, 4, 24, 16, 13)


def test_edf_without_suffix_is_found_by_content(tmp_path):
  path = _write_edf(tmp_path / "hyp.edf", SLEEP_EDF)
  plain = tmp_path / "SC4001EC-Hypnogram"
  plain.write_bytes(path.read_bytes())
  assert read_hypnogram(plain).num_epochs == 14


def test_edf_starts_at_the_first_stage_and_may_lack_a_date(tmp_path):
  path = _write_edf(tmp_path / "h.edf", [(5, None, "Lights off"),
                                         (60, 30, "Sleep stage W"),
                                         (90, 60, "Sleep stage 2")],
                    startdate=False)
  hyp = read_hypnogram(path)
  np.testing.assert_array_equal(hyp.stages, [WAKE, N2, N2])
  assert hyp.start is None   # edfio's default recording is anonymised


def test_edf_start_moves_with_the_first_stage(tmp_path):
  path = _write_edf(tmp_path / "h.edf", [(60, 30, "Sleep stage W")])
  assert read_hypnogram(path).start == datetime.datetime(1989, 4, 24, 16, 14)


def test_edf_with_20_second_epochs_says_so(tmp_path):
  path = _write_edf(tmp_path / "h.edf", [(0, 20, "Sleep stage W"),
                                         (20, 40, "Sleep stage 2"),
                                         (60, 20, "Sleep stage R")])
  hyp = read_hypnogram(path)
  assert hyp.epoch_seconds == 20.0
  np.testing.assert_array_equal(hyp.stages, [WAKE, N2, N2, REM])


@pytest.mark.parametrize("annotations,words", [
    ([(0, 60, "Sleep stage W"), (30, 30, "Sleep stage 2")],
     ["'Sleep stage 2' at 30 s", "overlaps 'Sleep stage W' at 0 s"]),
    ([(0, 30, "Sleep stage W"), (30, 45, "Sleep stage 2")],
     ["'Sleep stage 2' at 30 s", "45 s", "whole 30-s epochs"]),
    ([(0, 30, "Sleep stage W"), (30, 15, "Sleep stage 2")],
     ["'Sleep stage 2' at 30 s", "15 s", "epoch_seconds"]),
    ([(0, 30, "Sleep stage W"), (30, None, "Sleep stage 2")],
     ["'Sleep stage 2' at 30 s", "no duration"]),
    ([(0, None, "Lights off"), (10, 5, "Arousal")],
     ["no sleep-stage annotations", "Lights off", "Sleep stage W"]),
    ([(0, 60, "Sleep stage ?")], ["all 2 epochs are unscored"]),
    ([(0, 30, "Sleep stage W"), (30, 30, "Sleep stage 5")],
     ["'Sleep stage 5' at 30 s is not a sleep stage"]),
])
def test_bad_edf_hypnograms_are_refused(tmp_path, annotations, words):
  path = _write_edf(tmp_path / "h.edf", annotations)
  message = _raises(read_hypnogram, path)
  assert str(path) in message
  for word in words:
    assert word in message


def test_damaged_edf_is_refused(tmp_path):
  pytest.importorskip("edfio")
  path = tmp_path / "h.edf"
  path.write_bytes(b"0       " + b"garbage" * 10)
  message = _raises(read_hypnogram, path)
  assert str(path) in message and "not a readable EDF+ file" in message


def test_edf_without_edfio_says_how_to_install(tmp_path, monkeypatch):
  path = tmp_path / "h.edf"
  path.write_bytes(b"0       ")
  monkeypatch.setitem(sys.modules, "edfio", None)   # import edfio fails
  message = _raises(read_hypnogram, path)
  assert message == (f"{path}: reading EDF+ hypnograms needs edfio: pip "
                     "install 'medgen_jax[sleep]'")


# ---------------------------------------------------------------------------
# The shared YASA hypnograms (PROVENANCE.md).
# ---------------------------------------------------------------------------


def test_shared_yasa_hypnograms(shared_data_dir):
  folder = shared_data_dir / "sleep" / "hypnograms"
  hyp = read_hypnogram(folder / "data_full_6hrs_100Hz_hypno_30s.txt")
  assert hyp.num_epochs == 720 and hyp.epoch_seconds == 30.0
  np.testing.assert_array_equal(np.bincount(hyp.stages, minlength=5),
                                [43, 22, 318, 182, 155])   # W N1 N2 N3 REM
  sub = read_hypnogram(folder / "sub-02_hypno_30s.txt")
  assert sub.num_epochs == 98
  assert set(np.unique(sub.stages)) == {WAKE, N1, N2, N3}
  assert sub.stages[0] == WAKE
