"""The VAE family: learns known distributions, recovers NB dispersion,
resumes exactly, embeds, samples, and refuses mismatched likelihoods."""

import json

import chex
import jax
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from medgen_jax import cli
from medgen_jax.configs import vae as vae_config
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.families.vae import VaeTask
from medgen_jax.train.loop import load_run, train_and_evaluate

# A linear-Gaussian table: x = W z + b + sigma * eps, z ~ N(0, I_2), 6 genes.
W = np.array([[1.5, 0.0], [0.8, 0.6], [0.0, -1.0], [0.4, 0.4], [-0.7, 0.9],
              [0.2, -0.3]])
B = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -1.0])
SIGMA = 0.3
COV = W @ W.T + SIGMA**2 * np.eye(6)

# NB counts of two cell types over 12 genes, with known per-gene dispersion.
THETA = np.array([0.5, 1.0, 2.0, 4.0] * 3)
PROPS = np.stack([np.linspace(1, 3, 12), np.linspace(3, 1, 12)])
PROPS = PROPS / PROPS.sum(1, keepdims=True)


def _split_of(x, labels=None, library=None):
  arrays = {"x": x.astype(np.float32)}
  if labels is not None:
    arrays["label"] = labels.astype(np.int32)
  if library is not None:
    arrays["library_size"] = library.astype(np.float32)
  return Split(arrays)


def _expression(name, splits, kind, labels=False):
  genes = next(iter(splits.values()))["x"].shape[1]
  meta = {"gene_names": tuple(f"g{i}" for i in range(genes)), "matrix": "X",
          "matrix_kind": kind}
  if labels:
    meta.update(num_classes=2, class_names=("type_a", "type_b"))
  return Dataset(name, splits, source=f"simulated {name}", modality="expression",
                 metadata=meta)


@DATASETS.register("test_linear_gaussian")
def _linear_gaussian(data_config):
  splits = {}
  for i, (name, n) in enumerate((("train", 2048), ("val", 512))):
    rng = np.random.default_rng([data_config.seed, i])
    z = rng.standard_normal((n, 2))
    splits[name] = _split_of(B + z @ W.T + SIGMA * rng.standard_normal((n, 6)))
  return _expression("test_linear_gaussian", splits, "scaled")


def nb_counts(rng, n):
  labels = rng.integers(0, 2, n)
  library = np.exp(rng.normal(np.log(200.0), 0.3, n))
  mu = library[:, None] * PROPS[labels]
  counts = rng.poisson(rng.gamma(THETA, mu / THETA))  # Gamma-Poisson = NB
  return counts, labels


@DATASETS.register("test_nb_counts")
def _nb_counts(data_config):
  splits = {}
  for i, (name, n) in enumerate((("train", 3000), ("val", 400))):
    counts, labels = nb_counts(np.random.default_rng([data_config.seed, i]), n)
    splits[name] = _split_of(counts, labels, counts.sum(1))
  return _expression("test_nb_counts", splits, "counts", labels=True)


@DATASETS.register("test_lognorm")
def _lognorm(data_config):
  rng = np.random.default_rng(0)
  x = np.log1p(rng.random((64, 5)) * 10)
  return _expression("test_lognorm", {"train": _split_of(x)}, "log_normalized")


def _config(data, **vae):
  c = vae_config.get_config()
  c.data.name = data
  c.data.val_fraction = 0.0
  c.data.test_fraction = 0.0
  c.train.num_devices = 1
  c.train.progress = False
  c.train.batch_size = 128
  for k, v in vae.items():
    node, leaf = (c.train, k[6:]) if k.startswith("train_") else (c.vae, k)
    node[leaf] = v
  return c


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
  c = _config("test_linear_gaussian", latent_dim=2, hidden=(32,),
              iwae_samples=50, eval_examples=512, train_steps=1500,
              train_log_every=500, train_eval_every=1500,
              train_checkpoint_every=1500)
  c.optimizer.learning_rate = 3e-3
  workdir = tmp_path_factory.mktemp("vae") / "linear"
  return train_and_evaluate(c, workdir), workdir


def test_learns_a_linear_gaussian_to_its_exact_likelihood(linear_run):
  out, workdir = linear_run
  val = load_dataset(load_run(workdir).config.data).split("val")["x"]
  true_nll = -stats.multivariate_normal(B, COV).logpdf(val).mean()
  last = out["last_metrics"]
  elbo, iwae_nll = last["eval/val_elbo"], last["eval/val_iwae_nll"]
  # Bounds in the right order, and close to the exact held-out likelihood
  # (an untrained model scores ~ 20 nats worse).
  assert -elbo >= iwae_nll - 0.02
  assert iwae_nll >= true_nll - 0.05
  assert iwae_nll - true_nll < 0.3, (iwae_nll, true_nll)
  config = json.loads((workdir / "config.json").read_text())
  assert config["vae"]["resolved_likelihood"] == "gaussian"
  assert config["vae"]["data_shape"] == [6]


def test_recovers_nb_dispersion_and_cell_types(tmp_path, capsys):
  work = tmp_path / "nb"
  assert cli.main(["train", "vae", "--data", "test_nb_counts",
                   "--set", "data.val_fraction=0", "--set",
                   "data.test_fraction=0", "--latent-dim", "2", "--hidden",
                   "32", "--steps", "3000", "--batch-size", "128",
                   "--lr", "1e-2", "--num-devices", "1", "--no-progress",
                   "--eval-every", "3000", "--checkpoint-every", "1500",
                   "--iwae-samples", "10", "--workdir", str(work)]) == 0
  run = load_run(work)
  assert run.config.vae.resolved_likelihood == "nb"
  theta = np.log1p(np.exp(np.asarray(run.state.params["gene_theta"]))) + 1e-4
  # Within 30% of the truth (3000 cells; a fit of the likelihood alone is
  # tested in tests/objectives/test_likelihoods.py).
  np.testing.assert_allclose(theta, THETA, rtol=0.3)
  # The two cell types separate in the latent space.
  code = cli.main(["embed", "--workdir", str(work), "--out",
                   str(tmp_path / "z.npz"), "--plot", str(tmp_path / "z.png")])
  out = capsys.readouterr().out
  assert code == 0 and "ARI" in out
  ari = float(out.split("ARI ")[1].split(",")[0])
  with np.load(tmp_path / "z.npz") as f:
    assert f["z"].shape == (3400, 2) and set(f["split"]) == {"train", "val"}
    labels = f["label"]
  # Against the best any method can do: the true model's likelihood-ratio
  # classification of the same cells (ARI ~0.73 here; NB noise overlaps).
  ds = load_dataset(run.config.data)
  x = np.concatenate([ds.split(s)["x"] for s in ("train", "val")])
  lib = x.sum(1, keepdims=True)
  ll = [stats.nbinom.logpmf(x, THETA, THETA / (THETA + lib * PROPS[k])).sum(1)
        for k in (0, 1)]
  oracle = adjusted_rand_score(labels, (ll[1] > ll[0]).astype(int))
  assert ari > oracle - 0.1, (ari, oracle)
  assert (tmp_path / "z.png").stat().st_size > 1000
  # Synthetic profiles: counts with the training library size.
  assert cli.main(["sample", "--workdir", str(work), "--n", "500", "--out",
                   str(tmp_path / "s.npz")]) == 0
  with np.load(tmp_path / "s.npz") as f:
    x = f["x"]
  assert x.shape == (500, 12) and np.all(x == np.round(x)) and x.min() >= 0
  assert abs(np.median(x.sum(1)) / 200.0 - 1) < 0.25


def test_resume_equals_uninterrupted(tmp_path):
  full = train_and_evaluate(_config("test_linear_gaussian", hidden=(16,),
                                    train_steps=6, train_checkpoint_every=3,
                                    train_eval_every=6, iwae_samples=4,
                                    eval_examples=64), tmp_path / "full")
  train_and_evaluate(_config("test_linear_gaussian", hidden=(16,),
                             train_steps=3, train_checkpoint_every=3,
                             train_eval_every=6, iwae_samples=4,
                             eval_examples=64), tmp_path / "split")
  resumed = train_and_evaluate(_config("test_linear_gaussian", hidden=(16,),
                                       train_steps=6, train_checkpoint_every=3,
                                       train_eval_every=6, iwae_samples=4,
                                       eval_examples=64),
                               tmp_path / "split", resume=True)
  chex.assert_trees_all_equal(jax.tree.leaves(full["state"]),
                              jax.tree.leaves(resumed["state"]))


def test_image_vae_step_and_outputs(tiny_config, tmp_path):
  c = vae_config.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train, c.data.phantoms.num_val = 256, 64
  c.data.phantoms.num_test = 0
  c.vae.width, c.vae.latent_dim = 8, 4
  c.vae.iwae_samples, c.vae.eval_examples = 4, 40
  c.train.batch_size, c.train.num_devices, c.train.progress = 16, 1, False
  c.train.steps, c.train.eval_every, c.train.checkpoint_every = 4, 4, 4
  c.train.num_samples = 4
  ds = load_dataset(c.data)
  task = VaeTask(c, ds)
  assert c.vae.resolved_likelihood == "discretized_logistic"
  state = jax.jit(task.init_state)(jax.random.key(0))
  train = ds.split("train")
  sampler = IndexSampler(len(train), 16, seed=0)
  chex.clear_trace_counter()
  step = jax.jit(chex.assert_max_traces(task.train_step, n=1))
  for i in range(3):
    state, metrics = step(state, task.make_batch(train, sampler, i),
                          jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  out = task.evaluate(state, 3, ds)
  assert {"samples", "reconstructions", "traversal"} <= set(out.images)
  assert out.images["traversal"].shape == (4 * 9, 16, 16, 1)
  assert 0 < out.scalars["eval/val_bits_per_dim"] < 9
  # bits/dim is the IWAE NLL in nats per pixel, in base 2.
  assert out.scalars["eval/val_bits_per_dim"] == pytest.approx(
      out.scalars["eval/val_iwae_nll"] / (256 * np.log(2)), rel=1e-5)


def test_count_likelihood_on_non_counts_is_one_line(tmp_path, capsys):
  code = cli.main(["train", "vae", "--data", "test_lognorm", "--likelihood",
                   "zinb", "--set", "data.val_fraction=0", "--set",
                   "data.test_fraction=0", "--batch-size", "16",
                   "--workdir", str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert code == 3 and "zinb models counts" in err
  assert "log_normalized" in err and "--likelihood gaussian" in err
  assert not (tmp_path / "w").exists()
  code = cli.main(["train", "vae", "--likelihood", "nb", "--workdir",
                   str(tmp_path / "w")])  # phantom images
  err = capsys.readouterr().err
  assert code == 2 and "does not fit images" in err


def test_embed_refused_for_a_family_without_latents(tiny_gan_run, tmp_path,
                                                    capsys):
  code = cli.main(["embed", "--workdir", str(tiny_gan_run["workdir"]),
                   "--out", str(tmp_path / "z.npz")])
  assert code == 2 and "no latent space" in capsys.readouterr().err


def test_real_pbmc_trains_embeds_and_refuses_counts(shared_data_dir, tmp_path,
                                                    capsys):
  folder = str(shared_data_dir / "pbmc68k_reduced")
  work = tmp_path / "pbmc"
  assert cli.main(["train", "vae", "--data", "pbmc68k_reduced", "--data-dir",
                   folder, "--steps", "20", "--hidden", "16", "--latent-dim",
                   "4", "--iwae-samples", "4", "--num-devices", "1",
                   "--no-progress", "--workdir", str(work)]) == 0
  config = json.loads((work / "config.json").read_text())
  assert config["vae"]["resolved_likelihood"] == "gaussian"
  assert config["vae"]["data_shape"] == [765]
  records = [json.loads(l) for l in (work / "metrics.jsonl").read_text()
             .splitlines()]
  last = records[-1]
  assert np.isfinite(last["eval/val_iwae_nll"])
  assert last["eval/val_impute_mae"] > 0
  assert cli.main(["embed", "--workdir", str(work), "--out",
                   str(tmp_path / "z.npz")]) == 0
  with np.load(tmp_path / "z.npz") as f:
    assert f["z"].shape == (700, 4) and len(set(f["label"])) == 10
  capsys.readouterr()
  # .raw is log-normalised: a count likelihood is refused in one line.
  code = cli.main(["train", "vae", "--data", "pbmc68k_reduced", "--data-dir",
                   folder, "--likelihood", "nb", "--workdir",
                   str(tmp_path / "nb")])
  err = capsys.readouterr().err
  assert code == 3 and err.count("medgen: error:") == 1 and "counts" in err


def test_conditional_vae_generates_the_asked_class(tmp_path, capsys):
  work = tmp_path / "cond"
  assert cli.main(["train", "vae", "--data", "test_nb_counts", "--set",
                   "data.val_fraction=0", "--set", "data.test_fraction=0",
                   "--condition", "label", "--likelihood", "zinb",
                   "--hidden", "16", "--latent-dim", "2", "--steps", "300",
                   "--lr", "1e-2", "--batch-size", "128", "--num-devices", "1",
                   "--iwae-samples", "4", "--no-progress",
                   "--workdir", str(work)]) == 0
  assert load_run(work).config.vae.num_conditions == 2
  for label in (0, 1):
    out = tmp_path / f"s{label}.npz"
    assert cli.main(["sample", "--workdir", str(work), "--n", "400",
                     "--label", str(label), "--library-size", "1000",
                     "--out", str(out)]) == 0
    with np.load(out) as f:
      assert set(f["label"]) == {label}
      profile = f["x_mean"].mean(0) / 1000.0
    # The generated mean profile follows the asked type's proportions
    # (type a rises over the genes, type b falls).
    assert np.corrcoef(profile, PROPS[label])[0, 1] > 0.9, profile
  code = cli.main(["sample", "--workdir", str(work), "--label", "2",
                   "--out", str(tmp_path / "bad.npz")])
  assert code == 2 and "expected 0..1" in capsys.readouterr().err
