"""The model-family registry: `medgen train FAMILY` -> a task class.

A task is what the generic loop (train/loop.py) needs from a model family.
The class is constructed as `Task(config, dataset=None)`; with a dataset it
validates `config` and records what the data decides (channels, number of
classes) so that config.json alone rebuilds the model. It provides:

  get_config()                    (static) the family's default config
  batch_axis                      the example axis of a batch
  resumable_overrides             config fields a resumed run may change
  init_state(key) -> state        a pytree (TrainState, GANState, ...)
  train_step(state, batch, key) -> (state, metrics)   pure, jit-able
  batch(sampler, index) -> dict of numpy arrays        data for step `index`
  evaluate(state, step, workdir) -> dict               periodic outputs
  grid_inputs(n, seed, label), sample(state, ...)      for `medgen sample`

The GAN family (train/gan_task.py) is the worked example; later families
(VAE, recurrent, survival) register themselves here the same way.
"""

from __future__ import annotations

from medgen_jax.registry import Registry

TASKS: Registry = Registry("model family", hint="medgen train FAMILY")


def get_task(name: str):
  """The task class registered as `name` (built-in families included)."""
  from medgen_jax.train import gan_task  # noqa: F401  (registers "gan")
  return TASKS.get(name)
