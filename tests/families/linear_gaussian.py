"""A second model family, defined entirely outside the package (a plug-in).

Probabilistic PCA (Tipping & Bishop 1999): x = W z + b + sigma * eps with
z ~ N(0, I_k), eps ~ N(0, I_d), so x ~ N(b, W W^T + sigma^2 I). The
per-example loss is the exact negative log-likelihood of that Gaussian.
It has its own config section (`linear_gaussian`), its own flag
(`--latent`), its own dataset (`gaussian_table`, a table of floats) and
trains, resumes and samples through the real loop and CLI, which it does not
modify. Importing this module registers all of it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from medgen_jax.configs.base import check_int, get_base_config
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.registry import DATASETS
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import TASKS, BaseTask, Flag, Option, Outputs
from medgen_jax.train.update import LossOutput, make_gradient_fn, update

DIM = 4
TRUE_MEAN = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
TRUE_FACTORS = np.array([[1.5, 0.0], [0.8, 0.6], [0.0, -1.0], [0.4, 0.4]],
                        np.float32)
TRUE_NOISE_STD = 0.3


def true_covariance() -> np.ndarray:
  return TRUE_FACTORS @ TRUE_FACTORS.T + TRUE_NOISE_STD**2 * np.eye(DIM)


@DATASETS.register("gaussian_table")
def load_gaussian_table(data_config) -> Dataset:
  """1024 train / 512 val rows of a known 4-D Gaussian, drawn from data.seed."""
  splits = {}
  for index, (name, n) in enumerate((("train", 1024), ("val", 512))):
    rng = np.random.default_rng([data_config.seed, index])
    z = rng.standard_normal((n, TRUE_FACTORS.shape[1]))
    x = (TRUE_MEAN + z @ TRUE_FACTORS.T
         + TRUE_NOISE_STD * rng.standard_normal((n, DIM)))
    splits[name] = Split({"x": x.astype(np.float32)})
  return Dataset("gaussian_table", splits, source="generated gaussian table",
                 modality="table")


def get_config():
  c = get_base_config()
  c.family = "linear_gaussian"
  c.data.name = "gaussian_table"
  c.optimizer.learning_rate = 0.02
  c.train.steps = 400
  c.train.batch_size = 128
  c.train.log_every = 50
  c.train.eval_every = 200
  c.train.checkpoint_every = 200
  c.train.progress = False
  c.linear_gaussian = lg = ml_collections.ConfigDict()
  lg.latent_dim = 2
  return c


class PPCA(nn.Module):
  """Parameters of x ~ N(b, W W^T + sigma^2 I); returns per-example NLL."""

  dim: int
  latent_dim: int

  def setup(self):
    self.w = self.param("w", nn.initializers.normal(0.5),
                        (self.dim, self.latent_dim))
    self.b = self.param("b", nn.initializers.zeros, (self.dim,))
    self.log_sigma = self.param("log_sigma", nn.initializers.zeros, ())

  def covariance(self):
    return self.w @ self.w.T + jnp.exp(2 * self.log_sigma) * jnp.eye(self.dim)

  def __call__(self, x):  # x: [batch, dim] -> [batch] negative log-likelihood
    chol = jnp.linalg.cholesky(self.covariance())
    r = jax.scipy.linalg.solve_triangular(chol, (x - self.b).T, lower=True)
    logdet = 2 * jnp.sum(jnp.log(jnp.diag(chol)))
    return 0.5 * (self.dim * jnp.log(2 * jnp.pi) + logdet
                  + jnp.sum(r**2, axis=0))

  def sample(self, key, n):
    kz, ke = jax.random.split(key)
    z = jax.random.normal(kz, (n, self.latent_dim))
    eps = jax.random.normal(ke, (n, self.dim))
    return z @ self.w.T + self.b + jnp.exp(self.log_sigma) * eps


@TASKS.register("linear_gaussian")
class LinearGaussianTask(BaseTask):
  get_config = staticmethod(get_config)
  flags = (Flag("--latent", "linear_gaussian.latent_dim", "latent size k"),)
  sample_options = (Option("--shift", float, "added to every sample", 0.0),)
  data_keys = ("x",)

  @classmethod
  def validate_config(cls, config):
    check_int(config.linear_gaussian.latent_dim, "linear_gaussian.latent_dim",
              1, DIM + 1)

  def __init__(self, config, dataset=None):
    self.config = config
    self.model = PPCA(DIM, config.linear_gaussian.latent_dim)
    gradient_fn = make_gradient_fn(config)

    def loss_fn(params, batch, key):
      del key
      return LossOutput(self.model.apply({"params": params}, batch["x"]))

    def train_step(state, batch, key):
      key = jax.random.fold_in(key, state.step)
      state, info = update(state, loss_fn, batch, key, gradient_fn=gradient_fn)
      return state, {"loss": info.loss, "grad_norm": info.grad_norm}

    self.train_step = train_step
    self._nll = jax.jit(lambda p, x: jnp.mean(self.model.apply({"params": p}, x)))
    self._sample = jax.jit(
        lambda p, key, n: self.model.apply({"params": p}, key, n,
                                           method=PPCA.sample),
        static_argnums=2)

  def init_state(self, key):
    params = self.model.init(key, jnp.zeros((1, DIM)))["params"]
    return TrainState.create(apply_fn=self.model.apply, params=params,
                             tx=make_optimizer(self.config.optimizer,
                                               self.config.optimizer.learning_rate,
                                               self.config.train.steps))

  def evaluate(self, state, step, dataset):
    val = dataset.split("val")["x"]
    return Outputs(scalars={"eval/val_nll": float(self._nll(state.params, val))})

  def generate(self, state, key, n, options):
    x = np.asarray(self._sample(state.params, key, n)) + options["shift"]
    return {"x": x.astype(np.float32)}

  def checkpoint_metadata(self, state):
    return {"fold": 0}
