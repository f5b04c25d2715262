"""Scores and pictures of a latent space.

  * `cluster_scores`: k-means on latent codes (scikit-learn), scored against
    known labels with the adjusted Rand index (Hubert & Arabie 1985) and
    normalised mutual information; the same function scores any embedding
    (e.g. a PCA baseline of the same matrix), so comparisons are like with
    like;
  * `pca`: principal components by SVD (numpy), for baselines and 2-D views;
  * `scatter_png`: a 2-D view coloured by label (matplotlib).

scikit-learn and matplotlib are the optional `analysis` extra
(`pip install 'medgen_jax[analysis]'`); without them these functions raise
a one-line ConfigError saying so.
"""

from __future__ import annotations

import io
import pathlib
from typing import Sequence

import numpy as np

from medgen_jax.errors import ConfigError


def _need(module: str, what: str):
  try:
    return __import__(module, fromlist=["_"])
  except ImportError:
    raise ConfigError(f"{what} needs {module.split('.')[0]}: pip install "
                      "'medgen_jax[analysis]'") from None


def pca(x: np.ndarray, num_components: int) -> np.ndarray:
  """Projects rows of x [n, d] on their top principal components [n, k]."""
  x = np.asarray(x, np.float64)
  centered = x - x.mean(0)
  _, _, vt = np.linalg.svd(centered, full_matrices=False)
  k = min(num_components, vt.shape[0])
  return (centered @ vt[:k].T).astype(np.float32)


def cluster_scores(z: np.ndarray, labels: np.ndarray, num_clusters: int,
                   seed: int = 0) -> dict[str, float]:
  """k-means (k = num_clusters, 10 restarts) on z [n, d] vs labels [n].

  Returns:
    {"ari": adjusted Rand index, "nmi": normalised mutual information}.
  """
  cluster = _need("sklearn.cluster", "clustering the latents")
  metrics = _need("sklearn.metrics", "scoring the clusters")
  assignments = cluster.KMeans(n_clusters=num_clusters, n_init=10,
                               random_state=seed).fit_predict(
                                   np.asarray(z, np.float64))
  return {"ari": float(metrics.adjusted_rand_score(labels, assignments)),
          "nmi": float(metrics.normalized_mutual_info_score(labels,
                                                            assignments))}


def scatter_png(points: np.ndarray, labels: np.ndarray | None,
                class_names: Sequence[str], path, title: str = "") -> pathlib.Path:
  """Writes a 2-D scatter of points [n, 2] coloured by label as a PNG."""
  matplotlib = _need("matplotlib", "plotting the latents")
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # after choosing the backend
  fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
  if labels is None:
    ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7)
  else:
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for k in np.unique(labels):
      sel = labels == k
      name = class_names[k] if k < len(class_names) else str(k)
      ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.7,
                 color=cmap(int(k) % cmap.N), label=f"{name} ({sel.sum()})")
    ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
  ax.set_xlabel("component 1")
  ax.set_ylabel("component 2")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  plt.close(fig)
  from medgen_jax.outputs import write_bytes
  path = pathlib.Path(path)
  write_bytes(path, buf.getvalue())
  return path
