"""The autoregressive recurrent family end to end: it learns sines, resumes
exactly, samples through the CLI, and trains on real records with gaps."""

import json

import chex
import jax
import numpy as np
import pytest

from medgen_jax import cli
from medgen_jax.data.registry import load_dataset
from medgen_jax.train.loop import load_run

STEPS = 300
ARGS = ["--hidden", "16", "--layers", "1", "--batch-size", "32", "--head",
        "gaussian",
        "--set", "data.sines_examples=600", "--eval-every", str(STEPS),
        "--checkpoint-every", "150", "--set", "rnn.eval_classifier_steps=0",
        "--set", "train.num_samples=16", "--no-progress", "--num-devices", "1"]



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """300 steps on sines (one device: the loop's sharding is tested on 8 in
  tests/train/test_parallel.py and tests/train/test_loop.py)."""
  work = tmp_path_factory.mktemp("rnn") / "full"
  assert cli.main(["train", "rnn", "--steps", str(STEPS), "--workdir",
                   str(work)] + ARGS) == 0
  return work


def test_it_learns_to_forecast_sines(trained):
  run = load_run(trained)
  task = run.task
  test = load_dataset(run.config.data).split("test")
  batch = task.to_batch(test.take(np.arange(len(test))))
  fresh = task.init_state(jax.random.key(run.config.seed))
  learned = task.forecast_scores(run.state, batch)
  untrained = task.forecast_scores(fresh, batch)
  # Forecasting the last 12 of 24 steps of the 60 test windows: far better
  # than an untrained model.
  assert learned["forecast_mae"] < 0.4 * untrained["forecast_mae"], (
      learned, untrained)
  nll = task.held_out_nll(run.state.params, batch)
  assert nll < task.held_out_nll(fresh.params, batch) - 3.0
  records = [json.loads(l) for l in
             (trained / "metrics.jsonl").read_text().splitlines()]
  last = records[-1]
  assert last["step"] == STEPS and np.isfinite(last["eval/val_nll_per_step"])
  assert abs(last["eval/val_nll_per_step"] - nll) < 1.0  # val vs test split
  assert (trained / "traces" / f"step_{STEPS:07d}.png").is_file()
  # the normalisation and channels are stored with the run
  assert run.config.rnn.channels == 5 and run.config.rnn.window == 24


def test_resume_equals_uninterrupted(trained, tmp_path, medgen, leaves):
  split = tmp_path / "split"
  code, _, err = medgen(["train", "rnn", "--steps", "150", "--workdir", split]
                         + ARGS)
  assert code == 0, err
  code, _, err = medgen(["train", "--workdir", split, "--resume", "--steps",
                          str(STEPS)])
  assert code == 0, err
  chex.assert_trees_all_equal(leaves(load_run(split).state),
                              leaves(load_run(trained).state))


def test_sample_writes_series_and_traces(trained, tmp_path, medgen):
  out = tmp_path / "s.npz"
  code, _, err = medgen(["sample", "--workdir", trained, "--n", "10",
                          "--length", "40", "--temperature", "0.5", "--out",
                          out])
  assert code == 0, err
  with np.load(out) as f:
    x, x_norm, mask = f["x"], f["x_norm"], f["mask"]
  assert x.shape == x_norm.shape == (10, 40, 5) and mask.all()
  run = load_run(trained)
  np.testing.assert_allclose(x, run.task.denormalize(x_norm), rtol=1e-6)
  # sines live in [0.5, 1] (median 0.75); a trained model's samples over
  # the training window sit there too (an untrained one's median: -0.23)
  assert 0.5 < np.median(x[:, :24]) < 1.0, np.median(x[:, :24])
  png = tmp_path / "s.png"
  code, _, err = medgen(["sample", "--workdir", trained, "--n", "4", "--out",
                          png])
  assert code == 0 and png.stat().st_size > 0, err
  code, _, err = medgen(["sample", "--workdir", trained, "--label", "1",
                          "--out", out])
  assert code == 2 and "--condition label" in err and "Traceback" not in err


def test_family_flags_and_bad_values(tmp_path, medgen):
  code, out, _ = medgen(["train", "rnn", "--help"])
  assert code == 0
  for flag in ("--channels", "--window", "--head", "--cell", "--resample"):
    assert flag in out
  code, _, err = medgen(["train", "rnn", "--cell", "transformer",
                          "--workdir", tmp_path / "w"])
  assert code == 2 and "--cell" in err and not (tmp_path / "w").exists()
  code, _, err = medgen(["train", "rnn", "--head", "poisson",
                          "--workdir", tmp_path / "w"])
  assert code == 2 and "gaussian" in err
  code, _, err = medgen(["train", "rnn", "--data", "phantoms",
                          "--workdir", tmp_path / "w"])
  assert code != 0 and "image family" in err and "Traceback" not in err


def test_trains_on_a_real_record_with_gaps(shared_data_dir, tmp_path, medgen):
  """03700181 has NaN samples in its record: they become masked steps, the
  loss stays finite, and the run keeps the ABP statistics in mmHg."""
  record = shared_data_dir / "physionet_vitals" / "03700181"
  work = tmp_path / "abp"
  code, _, err = medgen(["train", "rnn", "--data", record, "--channels",
                          "ABP", "--window", "125", "--steps", "20",
                          "--hidden", "8", "--layers", "1", "--head", "mdn",
                          "--eval-every", "20", "--set",
                          "rnn.eval_classifier_steps=0", "--set",
                          "rnn.eval_examples=16", "--no-progress",
                          "--num-devices", "1", "--workdir", work])
  assert code == 0, err
  config = json.loads((work / "config.json").read_text())
  r = config["rnn"]
  assert r["channel_names"] == ["ABP"] and r["units"] == ["mmHg"]
  assert r["rate"] == 125.0 and r["window"] == 125
  assert 20.0 < r["norm_offset"][0] < 80.0   # mean ABP of this record, mmHg
  records = [json.loads(l) for l in (work / "metrics.jsonl").read_text()
             .splitlines()]
  assert all(np.isfinite(v) for rec in records for v in rec.values()
             if isinstance(v, float))


def test_beat_segments_condition_on_the_beat_class(shared_data_dir, tmp_path,
                                                  medgen):
  record = shared_data_dir / "mitbih_100" / "100"
  work = tmp_path / "beats"
  code, _, err = medgen(["train", "rnn", "--data", record, "--channels",
                          "MLII", "--segment", "beat", "--resample", "90",
                          "--condition", "label", "--steps", "10", "--hidden",
                          "8", "--layers", "1", "--eval-every", "10", "--set",
                          "rnn.eval_classifier_steps=0", "--set",
                          "rnn.eval_examples=16", "--no-progress",
                          "--num-devices", "1", "--workdir", work])
  assert code == 0, err
  run = load_run(work)
  names = run.config.rnn.class_names
  assert names[0] == "N" and "A" in names
  out = tmp_path / "a.npz"
  a = names.index("A")
  code, _, err = medgen(["sample", "--workdir", work, "--n", "3", "--label",
                          a, "--out", out])
  assert code == 0, err
  with np.load(out) as f:
    assert (f["label"] == a).all() and f["x"].shape[1] == run.config.rnn.window


def test_static_covariates_from_a_folder_of_records(tmp_path, medgen):
  """wfdb:FOLDER reads every record (split by record); --covariates gives
  each record's windows its row, and samples take covariates by value."""
  wfdb = pytest.importorskip("wfdb")
  folder = tmp_path / "records"
  folder.mkdir()
  t = np.arange(600) / 100.0
  for k in range(4):
    signal = (1.0 + k) * np.sin(2 * np.pi * 1.2 * t)[:, None]
    wfdb.wrsamp(f"r{k}", fs=100, units=["mV"], sig_name=["ECG"],
                p_signal=signal, fmt=["16"], write_dir=str(folder))
  cov = tmp_path / "cov.csv"
  cov.write_text("record,amplitude\n" + "".join(f"r{k},{1 + k}\n"
                                               for k in range(4)))
  work = tmp_path / "cov"
  code, _, err = medgen(["train", "rnn", "--data", f"wfdb:{folder}",
                         "--covariates", cov, "--window", "50",
                         "--batch-size", "8", "--steps",
                         "4", "--hidden", "8", "--layers", "1", "--eval-every",
                         "4", "--set", "rnn.eval_classifier_steps=0", "--set",
                         "rnn.eval_examples=8",
                         "--no-progress", "--num-devices", "1", "--workdir",
                         work])
  assert code == 0, err
  r = load_run(work).config.rnn
  assert r.num_covariates == 1 and r.covariate_names == ("amplitude",)
  out = tmp_path / "s.npz"
  code, _, err = medgen(["sample", "--workdir", work, "--n", "2",
                         "--covariates", "2.5", "--out", out])
  assert code == 0, err
  code, _, err = medgen(["sample", "--workdir", work, "--covariates", "1,2",
                         "--out", out])
  assert code == 2 and "expected 1 numbers for amplitude" in err


def test_report_scores_real_windows_at_the_real_reference(trained,
                                                         monkeypatch):
  """A 'generator' that returns real validation windows: the report's
  discriminative score is near 0 and its predictive MAE near the
  train-on-real reference (the scores are measured, not assumed)."""
  from medgen_jax.train.task import ReportContext
  run = load_run(trained)
  task = run.task
  dataset = load_dataset(run.config.data)
  val = task.to_batch(dataset.split("val").take(
      np.arange(len(dataset.split("val")))))
  monkeypatch.setattr(task, "generate", lambda state, key, n, options:
                      task.package(val["x"][:n], np.zeros((n,), np.int32)))
  n = min(len(val["x"]), len(dataset.split("test")))
  report = task.report(run.state, dataset, ReportContext(
      step=run.step, n=n, options={"seeds": 2, "score_steps": 300}))
  assert report.facts["held_out_split"] == "test"
  assert report.scalars["test_discriminative_mean"] < 0.2
  ref = report.scalars["test_predictive_real_train"]
  assert abs(report.scalars["test_predictive_mean"] - ref) < 0.25 * ref
  assert [r["score"] for r in report.tables["TimeGAN scores"]] == [
      "discriminative (0 best)", "predictive MAE (lower better)"]


def test_evaluate_writes_the_sequence_report(trained, medgen, tmp_path):
  code, _, err = medgen(["evaluate", "--workdir", trained, "--out",
                         tmp_path / "r", "--seeds", "1", "--score-steps",
                         "20"])
  assert code == 0, err
  obj = json.loads((tmp_path / "r" / "report.json").read_text())
  assert obj["facts"]["score_seeds"] == 1 and "traces.png" in obj["pictures"]
  assert np.isfinite(obj["scalars"]["test_predictive_mean"])


def test_report_explains_the_one_step_forecast(trained):
  """`forecast_attributions`: integrated gradients of the predicted mean of
  a window's last value, complete against the scan forecast, blind to the
  value it predicts, and resting most on the steps just before it."""
  from medgen_jax.train.task import Report, ReportContext
  run = load_run(trained)
  task = run.task
  dataset = load_dataset(run.config.data)
  report = task.report(run.state, dataset, ReportContext(
      step=run.step, options={"seeds": 1, "score_steps": 20}))
  picture, ncols = report.images["forecast_attributions"]
  assert picture.ndim == 4 and picture.shape[0] == 1 and ncols is None
  assert -1.0 <= picture.min() and picture.max() <= 1.0
  assert report.facts["forecast_attributions_max_gap"] < 1e-3
  assert any("forecast_attributions.png" in n for n in report.notes)

  _, batch = task.attribution_windows(dataset, 4, seed=0)
  attr, _ = task.series_attributions(
      Report(), "f", task.forecast_score(run.state.params), batch,
      ["real"] * 4, "forecast")
  x, mask = batch["x"], batch["mask"]

  def direct(x):  # the scan forecast of step T-1 from steps < T-1, [4]
    # (gaussian head at temperature 0: its mean), averaged over channels
    return task.forecast(run.state, x[:, :-1], mask[:, :-1],
                         horizon=1)[:, 0].mean(-1)

  gain = direct(x) - direct(np.zeros_like(x))
  assert np.abs(gain).max() > 0.1
  # Completeness against a separate code path (the cells stepped by scan,
  # not nn.RNN). Smooth GRU: 64 trapezoid points err by ~1e-5 here, float32
  # rounding of the two paths by ~1e-6; 1e-3 is a fraction of a percent of
  # the gains (0.1-1) and far below the share of any one recent step.
  np.testing.assert_allclose(attr.sum((1, 2)), gain, atol=1e-3)
  assert np.all(attr[:, -1] == 0)   # the forecast never sees its target
  recent = np.abs(attr[:, -7:-1]).sum()
  early = np.abs(attr[:, :6]).sum()
  assert recent > 3 * early, (recent, early)
