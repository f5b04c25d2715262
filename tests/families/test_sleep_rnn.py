"""`medgen train rnn` on sleep data, end to end: hypnograms (categorical
head, time since lights-off) and actigraphy (count head, time of day),
samples, pictures, `medgen sleep-metrics`, and the refusals."""

import datetime
import json

import numpy as np
import pytest
from PIL import Image

from medgen_jax.baselines.sleep import MarkovChain, TimeOfDayCounts

TINY = ["--hidden", "16", "--layers", "1", "--batch-size", "16",
        "--num-devices", "1",
        "--set", "rnn.eval_classifier_steps=0", "--no-progress"]
STAY = 0.9        # a stage repeats with this probability


def _write_nights(folder, nights=6, epochs=160, seed=0):
  """Nights of a sticky chain: awake for the first 10 epochs, then a stage
  that repeats with probability STAY and otherwise moves to a neighbour."""
  rng = np.random.default_rng(seed)
  folder.mkdir()
  for i in range(nights):
    s = [0] * 10
    while len(s) < epochs:
      s.append(s[-1] if rng.random() < STAY else int(rng.integers(1, 5)))
    (folder / f"night{i}.txt").write_text(
        "# stages, one per 30 s\n" + "\n".join(map(str, s)) + "\n")
  return folder


@pytest.fixture(scope="module")
def hypnogram_run(tmp_path_factory):
  from medgen_jax import cli
  root = tmp_path_factory.mktemp("hyp")
  data = _write_nights(root / "nights")
  work = root / "run"
  code = cli.main(["train", "rnn", "--data", f"hypnogram:{data}",
                   "--test-records", "night5", "--val-fraction", "0",
                   "--window", "40", "--stride", "20", "--steps", "150",
                   "--set", "train.eval_every=150", *TINY,
                   "--workdir", str(work)])
  assert code == 0
  return data, work


def test_hypnogram_run_learns_the_chain(hypnogram_run):
  data, work = hypnogram_run
  config = json.loads((work / "config.json").read_text())
  r = config["rnn"]
  assert (r["head"], r["value_kind"], r["time_kind"]) == (
      "categorical", "categorical", "elapsed")
  assert r["category_names"] == ["W", "N1", "N2", "N3", "REM"]
  last = [json.loads(line) for line in (work / "metrics.jsonl").open()][-1]
  nll = last["eval/test_nll_per_step"]
  # Uniform guessing costs log 5 = 1.61 nats; the chain's entropy rate is
  # about 0.47. A model that uses the past is well below 1.
  assert nll < 1.0, nll
  for key in ("eval/test_gap_TST", "eval/test_stage_tv",
              "eval/test_transition_mae"):
    assert key in last
  picture = np.asarray(Image.open(next((work / "traces").glob("*.png"))))
  assert picture.ndim == 3 and picture.std() > 0


def test_hypnogram_samples_and_sleep_metrics(hypnogram_run, medgen, tmp_path):
  _, work = hypnogram_run
  out = tmp_path / "nights.npz"
  code, _, err = medgen(["sample", "--workdir", work, "--n", "3",
                         "--length", "100", "--out", out])
  assert code == 0, err
  with np.load(out) as f:
    x, t0 = f["x"][..., 0], f["t0"]
  assert x.shape == (3, 100) and set(np.unique(x)) <= {0, 1, 2, 3, 4}
  np.testing.assert_array_equal(t0, 0.0)         # from lights-off
  code, text, err = medgen(["sleep-metrics", out, "--kind", "hypnogram",
                            "--json"])
  assert code == 0, err
  rows = json.loads(text)["rows"]
  assert len(rows) == 3 and all(r["TIB"] == 50.0 for r in rows)
  code, _, err = medgen(["sleep-metrics", out])
  assert code == 2 and "--kind" in err


def test_markov_baseline_and_rnn_score_the_same_epochs(hypnogram_run):
  """The benchmark's comparison: the baseline, fitted on the run's train
  windows, scores the same held-out epochs as the run."""
  from medgen_jax.data.registry import load_dataset
  from medgen_jax.train.loop import load_run
  _, work = hypnogram_run
  run = load_run(work)
  ds = load_dataset(run.config.data)
  train, test = ds.split("train"), ds.split("test")
  chain = MarkovChain.fit(train["x"], train["mask"], train["t0"], 30.0, 5)
  nll, steps = chain.nll(test["x"], test["mask"], test["t0"])
  batch = run.task.to_batch(test.arrays)
  assert steps.sum() == batch["mask"].sum()
  rnn = run.task.held_out_nll(run.state.params, batch)
  assert np.isfinite(rnn) and rnn < np.log(5)
  assert nll.sum() / steps.sum() < np.log(5)


def test_refusals_name_the_fix(hypnogram_run, medgen, tmp_path):
  data, _ = hypnogram_run
  code, _, err = medgen(["train", "rgan", "--data", f"hypnogram:{data}",
                         "--workdir", tmp_path / "g"])
  assert code == 3 and "categorical" in err and "medgen train rnn" in err
  code, _, err = medgen(["train", "rnn", "--data", f"hypnogram:{data}",
                         "--head", "gaussian", "--workdir", tmp_path / "h"])
  assert code == 2 and "--head categorical" in err
  assert not (tmp_path / "g").exists() or not any((tmp_path / "g").iterdir())


def _write_actigraphy(folder, subjects=3, days=3, epoch_min=30, seed=0):
  """CSV exports (timestamp, activity) with a day/night rhythm: NB counts
  with mean 150 from 08:00 to 22:00 and 3 at night."""
  rng = np.random.default_rng(seed)
  folder.mkdir()
  per_day = 24 * 60 // epoch_min
  for s in range(subjects):
    start = datetime.datetime(2020, 3, 2 + s)
    rows = ["timestamp,activity"]
    for i in range(days * per_day):
      t = start + datetime.timedelta(minutes=epoch_min * i)
      mu = 150.0 if 8 <= t.hour < 22 else 3.0
      count = rng.poisson(rng.gamma(2.0, mu / 2.0))
      rows.append(f"{t:%Y-%m-%d %H:%M:%S},{count}")
    (folder / f"subject{s}.csv").write_text("\n".join(rows) + "\n")
  return folder


def test_actigraphy_run_beats_a_clockless_count_model(tmp_path, medgen):
  data = _write_actigraphy(tmp_path / "acti")
  work = tmp_path / "run"
  code, _, err = medgen(["train", "rnn", "--data", f"actigraphy:{data}",
                         "--test-records", "subject2", "--val-fraction", "0",
                         "--window", "48", "--stride", "24",
                         "--nonwear-minutes", "0", "--steps", "120",
                         "--set", "train.eval_every=120", *TINY,
                         "--batch-size", "8", "--workdir", work])
  assert code == 0, err
  r = json.loads((work / "config.json").read_text())["rnn"]
  assert (r["head"], r["time_kind"]) == ("zinb", "clock")
  from medgen_jax.data.registry import load_dataset
  from medgen_jax.train.loop import load_run
  run = load_run(work)
  ds = load_dataset(run.config.data)
  train, test = ds.split("train"), ds.split("test")
  # windows start at clock multiples of the stride (12 h)
  assert set(np.unique(test["t0"])) == {0.0, 43200.0}
  flat = TimeOfDayCounts.fit(train["x"], train["mask"], train["t0"], 1800.0,
                             bin_seconds=86400.0)
  nll, steps = flat.nll(test["x"], test["mask"], test["t0"])
  rnn = run.task.held_out_nll(run.state.params, run.task.to_batch(test.arrays))
  assert rnn < nll.sum() / steps.sum() - 0.2, (rnn, nll.sum() / steps.sum())
  # samples start where asked, and the actogram is drawn
  out = tmp_path / "days.npz"
  code, _, err = medgen(["sample", "--workdir", work, "--n", "2", "--start",
                         "12:00", "--out", out])
  assert code == 0, err
  with np.load(out) as f:
    np.testing.assert_array_equal(f["t0"], 12 * 3600.0)
    assert (f["x"] >= 0).all() and (f["x"] == np.round(f["x"])).all()
  code, _, err = medgen(["sample", "--workdir", work, "--n", "2", "--out",
                         tmp_path / "days.png"])
  assert code == 0, err
  code, _, err = medgen(["sample", "--workdir", work, "--n", "2", "--start",
                         "25:99", "--out", tmp_path / "bad.npz"])
  assert code == 2 and "--start" in err


def test_sleep_metrics_of_the_real_files(shared_data_dir, medgen, tmp_path):
  night = (shared_data_dir / "sleep" / "hypnograms" /
           "data_full_6hrs_100Hz_hypno_30s.txt")
  code, text, err = medgen(["sleep-metrics", night, "--json"])
  assert code == 0, err
  row = json.loads(text)["rows"][0]
  # PROVENANCE.md: W 43, N1 22, N2 318, N3 182, REM 155 epochs of 30 s
  assert row["TIB"] == 720 / 2 and row["TST"] == (22 + 318 + 182 + 155) / 2
  assert row["%REM"] == pytest.approx(100 * 155 / 677)
  code, text, err = medgen(["sleep-metrics", shared_data_dir / "sleep" /
                            "actigraphy" / "example_01.AWD"])
  assert code == 0, err
  lines = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines()[2:]}
  assert 0 < float(lines["IS"][0]) <= 1 and 0 < float(lines["RA"][0]) <= 1
  assert float(lines["days"][0]) <= 18401 / 1440
  folder = shared_data_dir / "sleep" / "actigraphy"
  code, _, err = medgen(["sleep-metrics", folder / "example_01_sleepdiary.csv"])
  assert code == 3 and "--diary" in err
  # with the diary: one row per NIGHT period that the recording covers
  code, text, err = medgen(["sleep-metrics", folder / "example_01.AWD",
                            "--diary", folder / "example_01_sleepdiary.csv",
                            "--json"])
  assert code == 0, err
  rows = json.loads(text)["rows"]
  assert len(rows) >= 5 and rows[0]["name"] == "01-24 23:00"
  assert rows[0]["TIB"] == 8 * 60            # NIGHT 23:00 to 07:00
  assert all(0 <= r["TST"] <= r["TIB"] for r in rows)
  other = tmp_path / "diary.csv"
  other.write_text("TYPE,START,END\nNIGHT,2020-01-01 23:00:00,"
                   "2020-01-02 07:00:00\n")
  code, _, err = medgen(["sleep-metrics", folder / "example_01.AWD",
                         "--diary", other])
  assert code == 3 and "no NIGHT period" in err
