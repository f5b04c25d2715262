"""medgen_jax: generative models for medical data in JAX and Flax.

The public API a paper's code imports:

    import medgen_jax as mg
    config = mg.get_config("gan")
    mg.train_and_evaluate(config, "runs/my_run")

Names are imported on first use (PEP 562), so `import medgen_jax` and the
`medgen` command start without loading JAX; the command can then turn a
Ctrl-C during start-up into its one-line message.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "CheckpointError": "medgen_jax.errors",
    "ConfigError": "medgen_jax.errors",
    "DataError": "medgen_jax.errors",
    "DownloadError": "medgen_jax.errors",
    "MedgenError": "medgen_jax.errors",
    "NonFiniteLossError": "medgen_jax.errors",
    "Registry": "medgen_jax.registry",
    "Dataset": "medgen_jax.data.base",
    "Split": "medgen_jax.data.base",
    "DATASETS": "medgen_jax.data.registry",
    "load_dataset": "medgen_jax.data.registry",
    "Discriminator": "medgen_jax.models.gan",
    "Generator": "medgen_jax.models.gan",
    "GAN_LOSSES": "medgen_jax.objectives.minimax",
    "GanLoss": "medgen_jax.objectives.minimax",
    "load_run": "medgen_jax.train.loop",
    "train_and_evaluate": "medgen_jax.train.loop",
    "make_optimizer": "medgen_jax.train.optimizers",
    "GANState": "medgen_jax.train.state",
    "TrainState": "medgen_jax.train.state",
    "TASKS": "medgen_jax.train.task",
    "BaseTask": "medgen_jax.train.task",
    "Task": "medgen_jax.train.task",
    "Outputs": "medgen_jax.train.task",
    "Flag": "medgen_jax.train.task",
    "get_task": "medgen_jax.train.task",
    "get_config": "medgen_jax.train.task",
    "LossOutput": "medgen_jax.train.update",
    "mean_gradient": "medgen_jax.train.update",
    "update": "medgen_jax.train.update",
}

__all__ = sorted([*_EXPORTS, "configs"])


def __getattr__(name: str):
  if name == "configs":
    return importlib.import_module("medgen_jax.configs")
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module 'medgen_jax' has no attribute {name!r}")


def __dir__():
  return __all__
