"""Tests of data/survival.py and data/survival_tables.py (no JAX)."""

import json
import os
import pathlib

import ml_collections
import numpy as np
import pytest

from medgen_jax.configs.survival import add_survival_data_options
from medgen_jax.data import survival
from medgen_jax.data import survival_tables as st
from medgen_jax.data.base import Dataset, Split, check_dataset
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.errors import ConfigError, DataError

from file_helpers import raises_one_line, write_file

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cfg(name, **fields):
  c = ml_collections.ConfigDict({"name": name, "data_dir": "", "seed": 0})
  add_survival_data_options(c)
  for key, value in fields.items():
    c[key] = value
  return c


def _file_cfg(path, **fields):
  return _cfg(str(path), **{"time_column": "t", "event_column": "e", **fields})


def _csv(tmp_path, header, rows, name="p.csv"):
  text = ",".join(header) + "\n" + "".join(
      ",".join(str(c) for c in r) + "\n" for r in rows)
  return write_file(tmp_path, name, text)


def _patients(n=40, **columns):
  """Rows t, e, age, grade, flag (+ columns: name -> list) of n patients."""
  rng = np.random.default_rng(1)
  cols = {"t": [f"{v:.1f}" for v in rng.uniform(1, 100, n)],
          "e": [i % 2 for i in range(n)],
          "age": [str(30 + (7 * i) % 41) for i in range(n)],
          "grade": ["ABC"[(5 * i) % 3] for i in range(n)],
          "flag": ["yes" if i % 3 else "no" for i in range(n)]}
  cols.update(columns)
  return list(cols), [list(r) for r in zip(*cols.values())]


def _raw(ds, split, feature):
  """Unstandardised values of one feature of a split."""
  enc = ds.metadata["encoding"]
  j = enc["feature_names"].index(feature)
  return ds.split(split)["x"][:, j] * enc["std"][j] + enc["mean"][j]


# ---------------------------------------------------------------------------
# Encoding, standardisation, imputation.
# ---------------------------------------------------------------------------


def test_encoding_and_standardisation_by_hand(tmp_path):
  header, rows = _patients()
  path = _csv(tmp_path, header, rows)
  ds = load_dataset(_file_cfg(path, kind="survival"))
  m = ds.metadata
  assert m["feature_names"] == ["age", "grade=B", "grade=C", "flag=yes"]
  train, test = (np.asarray(m["source_rows"][s]) for s in ("train", "test"))
  age = np.array([float(r[2]) for r in rows])
  grade_b = np.array([r[3] == "B" for r in rows], float)
  flag = np.array([r[4] == "yes" for r in rows], float)
  for j, raw in enumerate((age, grade_b, None, flag)):
    if raw is None:
      continue
    mean, std = raw[train].mean(), raw[train].std()
    np.testing.assert_allclose(m["encoding"]["mean"][j], mean)
    np.testing.assert_allclose(m["encoding"]["std"][j], std)
    np.testing.assert_allclose(ds.split("train")["x"][:, j],
                               (raw[train] - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(ds.split("test")["x"][:, j],
                               (raw[test] - mean) / std, rtol=1e-5)
  x = ds.split("train")["x"]
  assert x.dtype == np.float32 and x.shape == (len(train), 4)
  np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(ds.split("train")["time"],
                             [float(rows[i][0]) for i in train], rtol=1e-6)
  assert ds.split("test")["event"].dtype == np.int32
  assert m["time_column"] == "t" and m["event_column"] == "e"
  assert m["n_events"] == 20 and "treatment" not in ds.split("train")
  assert m["missing_report"] == "p.csv: no missing values"
  json.dumps(m)  # every metadata value is JSON-serialisable


def test_constant_column_has_std_one_and_row_names_are_dropped(tmp_path):
  header, rows = _patients(same=["5"] * 40)
  header, rows = [""] + header, [[str(i + 1)] + r for i, r in enumerate(rows)]
  ds = load_dataset(_file_cfg(_csv(tmp_path, header, rows), kind="survival"))
  assert ds.metadata["encoding"]["drop_columns"] == [""]
  j = ds.metadata["feature_names"].index("same")
  assert ds.metadata["encoding"]["std"][j] == 1.0
  assert (ds.split("train")["x"][:, j] == 0).all()


def test_levels_sorted_numerically_and_arff_order(tmp_path):
  header, rows = _patients(stage=["1", "2.0", "10", "2"] * 10)
  ds = load_dataset(_file_cfg(_csv(tmp_path, header, rows),
                              categorical_columns=("stage",)))
  assert ds.metadata["feature_names"][-2:] == ["stage=2", "stage=10"]
  rows = "".join(f"'{('Pre', 'Post')[i % 3 == 0]}',{i + 1},{i % 2}\n"
                 for i in range(30))
  arff = write_file(tmp_path, "b.arff", "% comment\n@relation x\n"
                    "@attribute 'men stat' {'Pre','Post'}\n"
                    "@attribute t numeric\n@ATTRIBUTE e\t{0,1}\n@data\n"
                    + rows)
  ds = load_dataset(_file_cfg(arff, kind="survival"))
  assert ds.metadata["feature_names"] == ["men stat=Post"]


def test_imputation_fills_come_from_train_only(tmp_path):
  n = 40
  header, rows = _patients(n)
  path = _csv(tmp_path, header, rows)
  train = load_dataset(_file_cfg(path)).metadata["source_rows"]["train"]
  # The split depends on events (and arms) and the seed only, so changing the
  # covariates keeps it: test rows get extreme values the fill must ignore.
  age = [str(1000 + i) if i not in train else str(i) for i in range(n)]
  grade = ["C" if i not in train else "AAB"[i % 3] for i in range(n)]
  for i in (train[0], train[1]) + tuple(i for i in range(n)
                                        if i not in train)[:2]:
    age[i], grade[i] = "", "NA"
  header, rows = _patients(n, age=age, grade=grade)
  ds = load_dataset(_file_cfg(_csv(tmp_path, header, rows)))
  assert ds.metadata["source_rows"]["train"] == train
  cols = {c["name"]: c for c in ds.metadata["encoding"]["columns"]}
  seen = [float(age[i]) for i in train if age[i]]
  assert cols["age"]["fill"] == np.median(seen) < 1000
  assert cols["grade"]["fill"] == "A" and cols["grade"]["levels"] == [
      "A", "B", "C"]
  test_rows = ds.metadata["source_rows"]["test"]
  gaps = [k for k, i in enumerate(test_rows) if not age[i]]
  np.testing.assert_allclose(_raw(ds, "test", "age")[gaps], np.median(seen),
                             rtol=1e-5)
  assert ds.metadata["missing_report"] == (
      "p.csv: imputed 8 cells in 2 columns with train medians/modes "
      "(age 4, grade 4)")


def test_missing_time_or_event_rows_are_dropped_and_reported(tmp_path):
  header, rows = _patients(60)
  rows[3][0], rows[4][1], rows[5][2], rows[6][3] = "", "NA", "", "?"
  path = _csv(tmp_path, header, rows)
  ds = load_dataset(_file_cfg(path))
  assert ds.metadata["n_rows"] == 58
  assert ds.metadata["missing_report"] == (
      "p.csv: dropped 2 rows lacking time, event or arm; imputed 2 cells in "
      "2 columns with train medians/modes (age 1, grade 1)")
  drop = load_dataset(_file_cfg(path, missing="drop"))
  assert drop.metadata["n_rows"] == 56
  assert drop.metadata["missing_report"] == (
      "p.csv: 4 rows with missing cells dropped (60 -> 56 rows)")
  kept = sum(drop.metadata["source_rows"].values(), [])
  assert not {3, 4, 5, 6} & set(kept)


# ---------------------------------------------------------------------------
# Splits.
# ---------------------------------------------------------------------------


def test_split_is_stratified_by_event_and_arm():
  ds = load_dataset(_cfg("survival_synthetic"))
  tr, te = ds.split("train"), ds.split("test")
  assert (len(tr), len(te)) == (800, 200)
  assert abs(tr["event"].mean() - te["event"].mean()) < 0.01
  for arm in (0, 1):
    assert abs((tr["treatment"] == arm).mean()
               - (te["treatment"] == arm).mean()) < 0.01
    rate = lambda s: s["event"][s["treatment"] == arm].mean()  # noqa: E731
    assert abs(rate(tr) - rate(te)) < 0.02


def test_k_folds_partition_the_rows_and_seeds_repeat(tmp_path):
  header, rows = _patients(43)
  path = _csv(tmp_path, header, rows)
  tests = [load_dataset(_file_cfg(path, folds=4, fold=k)).metadata[
      "source_rows"] for k in range(4)]
  held = sorted(sum((t["test"] for t in tests), []))
  assert held == list(range(43))
  for t in tests:
    assert sorted(t["train"] + t["test"]) == list(range(43))
    assert len(t["test"]) in (10, 11)
  again = load_dataset(_file_cfg(path, folds=4, fold=2)).metadata
  assert again["source_rows"] == tests[2]
  other = load_dataset(_file_cfg(path, folds=4, fold=2, seed=7)).metadata
  assert other["source_rows"] != tests[2]


def test_stratified_split_fraction():
  strata = np.repeat([0, 1, 2], [50, 30, 20])
  test = survival.stratified_split(strata, 0, 0, 0, 0.2)
  assert test.sum() == 20
  assert [int(test[strata == s].sum()) for s in range(3)] == [10, 6, 4]


# ---------------------------------------------------------------------------
# Errors: one line, naming the file and column.
# ---------------------------------------------------------------------------


def _error(path, kind=DataError, **fields):
  with pytest.raises(kind) as info:
    load_dataset(_file_cfg(path, **fields))
  message = str(info.value)
  assert "\n" not in message
  return message


def test_time_and_event_columns_must_exist_and_be_named(tmp_path):
  header, rows = _patients()
  path = _csv(tmp_path, header, rows)
  m = _error(path, time_column="days")
  assert "p.csv has no column 'days'" in m and "'age'" in m and "--time" in m
  m = _error(path, event_column="died")
  assert "'died'" in m and "--event" in m
  with pytest.raises(ConfigError, match=r"needs --time COL and --event COL.*"
                     r"'t', 'e', 'age'"):
    load_dataset(_cfg(str(path), event_column="e"))


def test_bad_time_and_event_values(tmp_path):
  header, rows = _patients()
  rows[7][0] = "-3"
  m = _error(_csv(tmp_path, header, rows, "neg.csv"))
  assert "neg.csv: time column 't' has negative time -3 at line 9" in m
  rows[7][0] = "soon"
  m = _error(_csv(tmp_path, header, rows, "text.csv"))
  assert "text.csv: time column 't' holds 'soon' at line 9" in m
  header, rows = _patients()
  rows[2][1] = "2"
  m = _error(_csv(tmp_path, header, rows, "ev.csv"))
  assert "ev.csv: event column 'e' holds '2' at line 4" in m
  assert "dead/alive" in m


@pytest.mark.parametrize("codes", [("alive", "dead"), ("censored", "dead"),
                                   ("False", "True"), ("0.0", "1.0")])
def test_two_level_event_codings(tmp_path, codes):
  header, rows = _patients(e=[codes[i % 2] for i in range(40)])
  ds = load_dataset(_file_cfg(_csv(tmp_path, header, rows)))
  assert ds.metadata["n_events"] == 20


def test_non_numeric_and_empty_columns(tmp_path):
  header, rows = _patients()
  rows[5][2] = "old"
  m = _error(_csv(tmp_path, header, rows, "a.csv"))
  assert "a.csv: numeric column 'age' holds 'old' at line 7" in m
  assert "categorical_columns" in m
  header, rows = _patients(empty=[""] * 40)
  m = _error(_csv(tmp_path, header, rows, "b.csv"))
  assert "b.csv: column 'empty' is entirely missing" in m
  assert "drop_columns=empty" in m
  header, rows = _patients(t=[""] * 40)
  m = _error(_csv(tmp_path, header, rows, "c.csv"))
  assert "c.csv: column 't' is entirely missing" in m and "--time" in m
  header, rows = _patients(empty=[""] * 40)
  ds = load_dataset(_file_cfg(_csv(tmp_path, header, rows, "b.csv"),
                              drop_columns=("empty",)))
  assert "empty" not in ds.metadata["feature_names"]
  assert ds.metadata["encoding"]["drop_columns"] == ["empty"]


def test_unknown_drop_categorical_treatment_columns(tmp_path):
  header, rows = _patients()
  path = _csv(tmp_path, header, rows)
  m = _error(path, drop_columns=("nope",))
  assert "data.drop_columns names 'nope'" in m and "p.csv" in m
  m = _error(path, categorical_columns=("size", "age"))
  assert "data.categorical_columns names 'size'" in m
  m = _error(path, treatment_column="arm")
  assert "no treatment column 'arm'" in m


def test_too_few_events(tmp_path):
  header, rows = _patients(e=[1, 1, 1] + [0] * 37)
  m = _error(_csv(tmp_path, header, rows))
  assert "p.csv: too few events" in m and "test split has 1 event(s)" in m


@pytest.mark.parametrize("fields,match", [
    ({"folds": 1}, "--folds 1"), ({"folds": 3, "fold": 3}, "--fold 3 is out"),
    ({"folds": -2}, "--folds"),
    ({"test_fraction": 0.0}, "test-fraction"),
    ({"test_fraction": 1.5}, "test-fraction"),
    ({"missing": "mean"}, "--missing 'mean'"), ({"folds": 99}, "exceeds")])
def test_split_options_out_of_range(tmp_path, fields, match):
  header, rows = _patients()
  m = _error(_csv(tmp_path, header, rows), ConfigError, **fields)
  assert match in m


def test_options_from_a_plain_mapping():
  with pytest.raises(ConfigError, match="--folds"):
    survival.read_options({"folds": 2.5})
  opts = survival.read_options({"drop_columns": "a, b", "time_column": "t"})
  assert opts.drop == ("a", "b") and opts.missing == "impute"


def test_malformed_arff(tmp_path):
  head = "@relation r\n@attribute t numeric\n@attribute e {0,1}\n@data\n"
  path = write_file(tmp_path, "a.arff", head + "1,0\n2,1,3\n")
  assert "a.arff: line 6 has 3 values" in raises_one_line(st.read_table, path)
  path = write_file(tmp_path, "s.arff", head + "{0 1}\n")
  assert "sparse" in raises_one_line(st.read_table, path)
  path = write_file(tmp_path, "r.arff", head.replace("numeric", "relational"))
  assert "'relational'" in raises_one_line(st.read_table, path)


# ---------------------------------------------------------------------------
# encode_rows: new patients encoded like the training data.
# ---------------------------------------------------------------------------


def test_encode_rows_round_trip_and_errors(tmp_path):
  header, rows = _patients(arm=["a", "b"] * 20)
  rows[9][2] = ""
  path = _csv(tmp_path, header, rows)
  ds = load_dataset(_file_cfg(path, treatment_column="arm"))
  enc = json.loads(json.dumps(ds.metadata["encoding"]))
  table = st.read_table(path)
  for split in ("train", "test"):
    idx = ds.metadata["source_rows"][split]
    x, arm, t, e = st.encode_table(table.take(np.asarray(idx)), enc)
    np.testing.assert_array_equal(x, ds.split(split)["x"])
    np.testing.assert_array_equal(arm, ds.split(split)["treatment"])
    np.testing.assert_array_equal(t, ds.split(split)["time"])
    np.testing.assert_array_equal(e, ds.split(split)["event"])
  # Another column order, no outcome, no arm: x only.
  x, arm, t, e = st.encode_rows(["flag", "grade", "age"],
                                [["no", "C", "50"], ["yes", "A", ""]], enc,
                                "new.csv")
  assert arm is None and t is None and e is None and x.shape == (2, 4)
  header, rows = st.read_table(path)  # the form `medgen predict` reads
  encoded = st.encode_rows(header, rows, enc, str(path))
  assert encoded["x"].shape == (40, 4) and encoded.get("time") is not None
  assert encoded[1] is encoded.treatment
  fill = next(c["fill"] for c in enc["columns"] if c["name"] == "age")
  j = enc["feature_names"].index("age")
  np.testing.assert_allclose(x[1, j] * enc["std"][j] + enc["mean"][j], fill,
                             rtol=1e-5)
  m = raises_one_line(st.encode_rows, ["age"], [["50"]], enc, "new.csv")
  assert "new.csv lacks the covariate column(s) 'grade', 'flag'" in m
  m = raises_one_line(st.encode_rows, ["age", "grade", "flag"],
                      [["50", "D", "no"]], enc, "new.csv")
  assert "column 'grade' holds unknown level 'D'" in m
  assert "'A', 'B', 'C'" in m


def test_arff_round_trip(shared):
  ds = load_dataset(_cfg("gbsg2", data_dir=str(shared / "sksurv")))
  table = st.read_table(shared / "sksurv" / "GBSG2.arff")
  idx = np.asarray(ds.metadata["source_rows"]["test"])
  x, _, t, e = st.encode_table(table.take(idx), ds.metadata["encoding"])
  np.testing.assert_array_equal(x, ds.split("test")["x"])
  np.testing.assert_array_equal(e, ds.split("test")["event"])


# ---------------------------------------------------------------------------
# Named datasets, the synthetic trial, the registry.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared():
  path = pathlib.Path(os.environ.get("MEDGEN_SHARED_DATA",
                                     REPO.parent / "shared" / "data"))
  if not (path / "sksurv").is_dir() or not (path / "lifelines").is_dir():
    pytest.skip(f"survival data {path}/sksurv and {path}/lifelines are absent "
                "(set MEDGEN_SHARED_DATA to the shared data folder)")
  return path


def _named(shared, name, **fields):
  folder = survival.SPECS[name].package
  return load_dataset(_cfg(name, data_dir=str(shared / folder), **fields))


def _size(ds):
  return sum(len(s) for s in ds.splits.values())


def test_named_sksurv_datasets(shared):
  ds = _named(shared, "whas500")
  assert (_size(ds), ds.metadata["n_events"]) == (500, 215)
  assert ds.metadata["time_unit"] == "days"
  assert _size(_named(shared, "gbsg2")) == 686
  flc = _named(shared, "flchain")
  assert not [f for f in flc.metadata["feature_names"]
              if f.startswith("chapter")]
  assert "creatinine" in flc.metadata["missing_report"]
  aids = _named(shared, "actg320")
  assert not {"time_d", "censor_d", "txgrp", "tx"} & {
      f.split("=")[0] for f in aids.metadata["feature_names"]}
  assert "karnof=100" in aids.metadata["feature_names"]
  assert len(aids.metadata["treatment_names"]) == 2
  vet = _named(shared, "veteran")
  assert vet.metadata["treatment_names"] == ["standard", "test"]
  assert vet.metadata["n_events"] == 128


def test_named_lifelines_datasets(shared):
  ds = _named(shared, "actg175")
  names = set(ds.metadata["feature_names"])
  assert not names & {"cd420", "cd820", "cd496", "r", "offtrt", "treat",
                      "pidnum", "", "arms"}
  assert ds.metadata["treatment_names"][1] == "zidovudine + didanosine"
  assert set(np.unique(ds.split("train")["treatment"])) == {0, 1, 2, 3}
  assert _size(ds) == 2139
  lung = _named(shared, "lung")
  assert _size(lung) == 228 and "inst" not in lung.metadata["feature_names"]
  assert "meal.cal 47" in lung.metadata["missing_report"]
  dropped = _named(shared, "lung", missing="drop")
  assert _size(dropped) == 168
  assert (_size(_named(shared, "kidney_transplant")),
          _size(_named(shared, "larynx"))) == (863, 90)
  no_arm = _named(shared, "veteran", treatment_column="none")
  assert "Treatment=test" in no_arm.metadata["feature_names"]


def test_data_dir_errors(shared, tmp_path, monkeypatch):
  # The shared folder's parent works too (its sksurv/ subfolder is searched).
  assert _size(load_dataset(_cfg("larynx", data_dir=str(shared)))) == 90
  with pytest.raises(DataError) as info:
    load_dataset(_cfg("whas500", data_dir=str(tmp_path)))
  assert f"{tmp_path / 'whas500.arff'} not found" in str(info.value)
  assert "../shared/data/sksurv" in str(info.value)
  monkeypatch.setattr(survival, "_bundled", lambda spec: None)
  with pytest.raises(DataError, match=r"--data-dir DIR.*medgen_jax\[survival"):
    load_dataset(_cfg("lung"))


def test_bundled_copy_is_used_without_data_dir():
  if survival._bundled(survival.SPECS["larynx"]) is None:
    pytest.skip("lifelines is not installed")
  assert _size(load_dataset(_cfg("larynx"))) == 90


def test_synthetic_trial():
  ds = load_dataset(_cfg("survival_synthetic"))
  m = ds.metadata
  assert _size(ds) == 1000 and ds.modality == "survival"
  assert m["feature_names"] == ["age", "bmi", "biomarker", "creatinine",
                                "sex=male", "stage=II", "stage=III"]
  assert m["treatment_names"] == ["control", "treated"]
  assert m["true_log_hazard_ratio"] == -0.5
  assert 0.3 <= 1 - m["n_events"] / 1000 <= 0.4
  again = load_dataset(_cfg("survival_synthetic"))
  np.testing.assert_array_equal(again.split("test")["x"],
                                ds.split("test")["x"])
  other = load_dataset(_cfg("survival_synthetic", seed=3))
  assert not np.array_equal(other.split("test")["time"],
                            ds.split("test")["time"])
  json.dumps(m)


def test_registry_and_modality_check(tmp_path):
  assert {"whas500", "actg175", "survival_synthetic"} <= set(DATASETS.names())
  header, rows = _patients()
  path = _csv(tmp_path, header, rows, "patients.tsv")
  path.write_text(path.read_text().replace(",", "\t"))
  ds = load_dataset(_file_cfg(path, kind="survival"))
  assert ds.name == "patients.tsv" and len(ds.metadata["feature_names"]) == 4
  bad = Dataset("b", {"train": Split({"x": np.zeros((3, 2), np.float32),
                                      "time": np.ones(3, np.float32),
                                      "event": np.ones(3, np.int32)})},
                "here", modality="survival", metadata={"feature_names": ["a"]})
  with pytest.raises(DataError, match="one name per feature"):
    check_dataset(bad)
