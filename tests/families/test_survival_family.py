"""The survival family end to end: it learns, restores, predicts, simulates
and refuses bad input in one line."""

import csv
import json

import chex
import jax
import numpy as np
import pytest

from medgen_jax import cli
from medgen_jax.data import survival as survival_data
from medgen_jax.data.registry import load_dataset
from medgen_jax.families.survival.effect import sample_times
from medgen_jax.metrics import survival as sm
from medgen_jax.train.loop import load_run, train_and_evaluate
from medgen_jax.train.task import get_config, get_task

STEPS = 300


def _config(**fields):
  c = get_config("survival")
  c.train.steps = STEPS
  c.train.eval_every = STEPS
  c.train.checkpoint_every = STEPS
  c.train.log_every = 100
  c.train.progress = False
  for path, value in fields.items():
    section, name = path.split("__")
    c[section][name] = value
  return c


def _records(workdir):
  return [json.loads(line) for line in
          (workdir / "metrics.jsonl").read_text().splitlines()]


def _write_patients(path, n=40, seed=3, drop=()):
  table = survival_data.synthetic_table(seed, n)
  header = [h for h in table.header if h not in drop]
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    for row in zip(*(table.columns[h] for h in header)):
      w.writerow(row)
  return path


@pytest.fixture(scope="module")
def cox_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("survival") / "cox"
  summary = train_and_evaluate(_config(), workdir)
  return workdir, summary


def test_cox_learns_the_synthetic_trial(cox_run):
  workdir, _ = cox_run
  last = _records(workdir)[-1]
  # Reference on the same held-out split: the C-index of the true linear
  # predictor minus its non-linear (biomarker^2) term would be lower; a
  # model that learned nothing scores 0.5.
  assert last["step"] == STEPS
  assert 0.70 < last["c_index"] < 0.85
  assert 0.05 < last["ibs"] < 0.2
  # The arm's true hazard ratio is exp(-0.5) = 0.61 for every patient.
  assert 0.45 < last["hr_treated"] < 0.85
  assert last["delta_rmst_treated"] > 0
  assert (workdir / "survival_curves" / f"step_{STEPS:07d}.png").is_file()


def test_restored_run_has_the_training_baseline(cox_run):
  workdir, _ = cox_run
  run = load_run(workdir)
  assert run.task._train is None   # curves come from the checkpoint's baseline
  config = get_config("survival")
  config.data.name = "survival_synthetic"
  ds = load_dataset(config.data)
  fresh = get_task("survival")(config, ds)   # Breslow on the train split
  test = ds.split("test").arrays
  times = np.array([0.5, 1.0, 2.0, 4.0])
  r1, s1 = run.task.risk_and_curves(run.state, test, times)
  r2, s2 = fresh.risk_and_curves(run.state, test, times)
  np.testing.assert_allclose(r1, r2, rtol=1e-6)
  np.testing.assert_allclose(s1, s2, rtol=1e-6, atol=1e-9)
  assert np.all(np.diff(s1, axis=1) <= 1e-12) and s1.min() >= 0


def test_predict_writes_curves_and_a_picture(cox_run, tmp_path, capsys):
  workdir, _ = cox_run
  patients = _write_patients(tmp_path / "patients.csv")
  out, plot = tmp_path / "curves.csv", tmp_path / "curves.png"
  code = cli.main(["predict", "--workdir", str(workdir), "--input",
                   str(patients), "--out", str(out), "--plot", str(plot),
                   "--times", "1,2,5"])
  assert code == 0, capsys.readouterr().err
  rows = list(csv.DictReader(open(out)))
  assert len(rows) == 40 and rows[0]["arm"] in ("control", "treated")
  s = np.array([[float(r[f"S({t})"]) for t in (1, 2, 5)] for r in rows])
  assert np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s, axis=1) <= 0)
  # Higher risk, lower survival.
  risk = np.array([float(r["risk"]) for r in rows])
  assert np.corrcoef(risk, s[:, 1])[0, 1] < -0.9
  assert plot.stat().st_size > 1000
  code = cli.main(["predict", "--workdir", str(workdir), "--input",
                   str(patients), "--out", str(out), "--arm", "all"])
  header = open(out).readline().strip().split(",")
  assert "control:risk" in header and "treated:risk" in header
  no_arm = _write_patients(tmp_path / "no_arm.csv", drop=("arm",))
  code = cli.main(["predict", "--workdir", str(workdir), "--input",
                   str(no_arm), "--out", str(out)])
  err = capsys.readouterr().err
  assert code == 2 and "no treatment column" in err and "--arm" in err
  code = cli.main(["predict", "--workdir", str(workdir), "--input",
                   str(no_arm), "--out", str(out), "--arm", "placebo"])
  err = capsys.readouterr().err
  assert code == 2 and "control, treated" in err
  missing = _write_patients(tmp_path / "no_age.csv", drop=("age",))
  code = cli.main(["predict", "--workdir", str(workdir), "--input",
                   str(missing), "--out", str(out)])
  err = capsys.readouterr().err
  assert code == 3 and "age" in err and err.count("\n") == 1


def test_simulated_outcomes_follow_the_predicted_curve(cox_run, tmp_path,
                                                       capsys):
  workdir, _ = cox_run
  one = _write_patients(tmp_path / "one.csv", n=1, drop=("time", "event"))
  npz = tmp_path / "s.npz"
  code = cli.main(["sample", "--workdir", str(workdir), "--input", str(one),
                   "--n", "4000", "--arm", "control", "--out", str(npz)])
  assert code == 0, capsys.readouterr().err
  samples = np.load(npz)
  assert set(samples.files) == {"time", "event", "patient", "treatment"}
  run = load_run(workdir)
  patient = run.task.read_patients(str(one))
  times = np.array([0.5, 1.0, 2.0, 3.0, 5.0])
  _, predicted = run.task.risk_and_curves(run.state, patient, times,
                                          treatment=0)
  kt, ks = sm.kaplan_meier(samples["time"], samples["event"])
  empirical = sm.step_at(kt, ks, times)
  # 4000 draws: the binomial sd of an empirical S is at most 0.008.
  np.testing.assert_allclose(empirical, predicted[0], atol=0.03)
  code = cli.main(["sample", "--workdir", str(workdir), "--out",
                   str(tmp_path / "x.npz")])
  err = capsys.readouterr().err
  assert code == 2 and "--input" in err


def test_sample_times_inverts_a_known_curve():
  times = np.linspace(0.0, 10.0, 1001)
  surv = np.exp(-0.3 * times)[None].repeat(3, 0)
  u = np.array([0.5, 0.9, 0.01])
  t, e = sample_times(surv, times, u)
  np.testing.assert_allclose(t[:2], -np.log(u[:2]) / 0.3, rtol=1e-3)
  assert list(e) == [1, 1, 0] and t[2] == 10.0   # past the grid: censored


def test_logistic_hazard_learns_and_resumes_exactly(tmp_path):
  c = _config(survival__objective="logistic_hazard")
  summary = train_and_evaluate(c, tmp_path / "lh")
  last = _records(tmp_path / "lh")[-1]
  assert 0.65 < last["c_index"] < 0.85 and last["ibs"] < 0.22
  assert summary["step"] == STEPS
  short = dict(train__steps=20, survival__objective="logistic_hazard")
  full = train_and_evaluate(_config(**short, train__checkpoint_every=10),
                            tmp_path / "full")
  train_and_evaluate(_config(**dict(short, train__steps=10),
                             train__checkpoint_every=10), tmp_path / "split")
  resumed = train_and_evaluate(_config(**short, train__checkpoint_every=10),
                               tmp_path / "split", resume=True)
  chex.assert_trees_all_equal(jax.tree.leaves(full["state"]),
                              jax.tree.leaves(resumed["state"]))


def test_recurrent_encoder_reads_the_trajectory(tmp_path):
  c = _config(survival__encoder="gru", survival__hidden=(32,),
              survival__rnn_hidden=16, train__batch_size=128)
  c.data.name = "survival_series_synthetic"
  train_and_evaluate(c, tmp_path / "gru")
  last = _records(tmp_path / "gru")[-1]
  test = load_dataset(c.data).split("test")
  age = test["x"][:, 0]    # the table carries age (and sex) only
  age_only = sm.harrell_c(test["time"], test["event"], age)
  assert last["c_index"] > age_only + 0.1, (last["c_index"], age_only)


def test_bad_input_is_one_line(tmp_path, capsys):
  path = _write_patients(tmp_path / "p.csv")
  code = cli.main(["train", "survival", "--data", str(path), "--workdir",
                   str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert code == 2 and "--time" in err and "age" in err
  assert err.count("error") == 1 and not (tmp_path / "w").exists()
  code = cli.main(["train", "survival", "--encoder", "gru", "--workdir",
                   str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert code == 2 and "--encoder mlp" in err
  code = cli.main(["train", "survival", "--objective", "cox",
                   "--rank-weight", "1", "--workdir", str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert code == 2 and "logistic_hazard" in err


def test_cox_step_on_8_devices_equals_one_device():
  """The Cox risk set spans the whole batch, also when the batch is split
  over devices: the sharded step computes the single-device step."""
  if jax.device_count() < 8:
    pytest.skip("needs 8 fake devices (tests/conftest.py sets them)")
  from medgen_jax.data.pipeline import IndexSampler
  from medgen_jax.train import parallel
  c = _config(train__batch_size=64)
  ds = load_dataset(c.data)
  task = get_task("survival")(c, ds)
  train = ds.split("train")
  sampler = IndexSampler(len(train), 64, seed=0)
  states = []
  for devices in (1, 8):
    mesh = parallel.make_mesh(devices)
    state = jax.jit(task.init_state, out_shardings=parallel.replicated(
        mesh))(jax.random.key(0))
    shardings = parallel.batch_shardings(
        mesh, task.batch_axes(task.make_batch(train, sampler, 0)))
    step = parallel.jit_sharded_step(task.train_step, mesh, shardings)
    for i in range(3):
      batch = parallel.put_batch(task.make_batch(train, sampler, i), shardings)
      state, metrics = step(state, batch, jax.random.key(1))
    states.append((state, float(metrics["nll"])))
  assert batch["x"].addressable_shards[0].data.shape[0] == 8
  for a, b in zip(jax.tree.leaves(states[0][0].params),
                  jax.tree.leaves(states[1][0].params)):
    # Adam's first steps move every weight by ~lr = 1e-3 whatever its
    # gradient's size, so summation-order noise shows up to ~1e-5.
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4,
                               atol=2e-5)
  assert states[0][1] == pytest.approx(states[1][1], rel=1e-5)


def test_report_attributes_risk_to_the_covariate_that_drives_it(cox_run):
  """"Risk attributions": the synthetic trial's biggest per-patient effect
  (biomarker) gets the largest mean |attribution|, bmi (no effect) the
  smallest, and each patient's attributions sum to its log-risk minus the
  mean patient's."""
  from medgen_jax.train.task import ReportContext
  workdir, _ = cox_run
  run = load_run(workdir)
  ds = load_dataset(run.config.data)
  report = run.task.report(run.state, ds, ReportContext(step=run.step))
  rows = {r["covariate"]: r for r in report.tables["Risk attributions"]}
  assert list(rows) == list(run.config.survival.feature_names)
  size = {n: r["mean absolute attribution"] for n, r in rows.items()}
  order = sorted(size, key=size.get, reverse=True)
  # From the mean patient (biomarker ~ 0) the true U-shaped term
  # 0.8 (b^2 - 1) adds 0.8 b^2: 0.8 on average. Next are stage III
  # (1.0 x E|1[III] - 0.25| = 0.375) and age (0.04 x 10 years x E|z| =
  # 0.32); bmi has no effect.
  assert order[0] == "biomarker" and order[-1] == "bmi", size
  assert size["biomarker"] > 1.5 * size[order[1]], size
  assert rows["biomarker"]["mean attribution"] > 0.5   # risk rises with b^2
  assert report.facts["risk_attribution_max_gap"] < 0.01

  test = ds.split("test").arrays
  base = ds.split("train")["x"].mean(0)
  attr, delta = run.task.risk_attributions(run.state, test, base)
  n = len(test["x"])
  log_risk = run.task.outputs(run.state, test)[:, 0]
  log_risk_base = run.task.outputs(run.state, {
      "x": np.repeat(base[None], n, 0), "treatment": test["treatment"]})[:, 0]
  # ReLU network: the integrand jumps at kinks, so the trapezoid rule errs
  # by O(1 / steps): about 0.003 at 256 points here, against log-risk
  # differences of order 1; 0.01 still catches a missing covariate (the
  # smallest real effect, creatinine's, averages about 0.15 a patient).
  np.testing.assert_allclose(attr.sum(1), log_risk - log_risk_base,
                             atol=0.01)
  np.testing.assert_allclose(delta, attr.sum(1) - (log_risk - log_risk_base),
                             atol=1e-4)
