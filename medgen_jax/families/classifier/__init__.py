"""The classifier family (`medgen train classifier`): an image classifier
trained on a dataset's labels, as the domain feature extractor of the
sample-quality metrics and for train-on-synthetic-test-on-real.

task.py: ClassifierTask (flags, data checks, held-out scores, extractor
hash, embeddings) and `extract_features(run, images)`; step.py: the
per-example cross-entropy on the generic update (`--data FILE.npz` of
generated samples is read by data/sample_files.py). Config: configs/classifier.py; model:
models/classifier.py; objective: objectives/classification.py.
"""

from medgen_jax.families.classifier.task import (ClassifierTask,
                                                 extract_features,
                                                 params_hash)

__all__ = ["ClassifierTask", "extract_features", "params_hash"]
