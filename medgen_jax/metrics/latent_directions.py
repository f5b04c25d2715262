"""Latent directions that move a classifier's output, and walks along them.

For a GAN or VAE with latent codes z [n, d] and a classifier applied to the
images generated from them (e.g. the logit of "pneumonia" against "normal"),
a latent direction u [d] is a unit vector along which the classifier's output
increases; walking z0 + alpha * u shows what the generator changes to get
there.

  * `class_direction`: the unit normal of a linear boundary in z space
    between the predicted classes: an L2-regularised logistic regression
    fitted by damped Newton steps (InterFaceGAN: Shen et al. 2020,
    "Interpreting the latent space of GANs for semantic face editing"), or
    the normalised difference of the class means;
  * `gradient_direction`: the normalised mean gradient of a differentiable
    score function (generator + classifier) with respect to z;
  * `walk`: latent codes z0 + alpha * u [n, len(alphas), d], optionally
    rescaled to the norm of z0;
  * `walk_effect`: the classifier's mean and std score and the fraction
    classified as the target class at each alpha, with a one-line summary.

Everything here works in z space exactly as the generator sees it: nothing is
standardised, so a direction can be added to the codes the generator takes.
Pure numpy (float64) except `gradient_direction`, which uses jax; no
scikit-learn.

A picture of a walk: generate images [n, a, h, w, c] in [-1, 1] from
`walk(...)` [n, a, d] and save them with
`outputs.save_image_grid(path, images.reshape(n * a, h, w, c), ncols=a)`:
one row per starting code, one column per alpha.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.errors import ConfigError, UnknownNameError

METHODS = ("logistic", "mean_difference")

# A score function of latent codes [n, d] -> [n] (a classifier's logit for
# the target class of the images generated from them).
ScoreFn = Callable[[np.ndarray], np.ndarray]


def _codes(z, name: str = "z") -> np.ndarray:
  """Latent codes as float64 [n, d], finite, n >= 1 and d >= 1."""
  z = np.asarray(z)
  if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
    raise ConfigError(f"{name}: expected latent codes of shape [n, d] with "
                      f"n, d >= 1, got shape {z.shape}")
  if not np.issubdtype(z.dtype, np.number) or np.issubdtype(
      z.dtype, np.complexfloating):
    raise ConfigError(f"{name}: expected real numbers, got dtype {z.dtype}")
  z = z.astype(np.float64)
  if not np.all(np.isfinite(z)):
    raise ConfigError(f"{name}: expected finite latent codes, found "
                      f"{int(np.sum(~np.isfinite(z)))} NaN/inf values")
  return z


def _unit(direction, d: int, name: str = "direction") -> np.ndarray:
  """A direction [d] scaled to unit length (float64)."""
  u = np.asarray(direction, np.float64)
  if u.shape != (d,):
    raise ConfigError(f"{name}: expected shape [{d}] (the latent size), got "
                      f"{u.shape}")
  norm = np.linalg.norm(u)
  if not np.isfinite(norm) or norm == 0:
    raise ConfigError(f"{name}: expected a finite non-zero vector, got norm "
                      f"{norm}")
  return u / norm


def _labels(scores, n: int) -> np.ndarray:
  """Binary labels [n] (bool): scores > 0, or integer/bool labels {0, 1}."""
  s = np.asarray(scores)
  if s.shape != (n,):
    raise ConfigError(f"scores: expected shape [{n}] (one per latent code), "
                      f"got {s.shape}")
  if s.dtype == bool:
    return s
  if np.issubdtype(s.dtype, np.integer):
    bad = np.setdiff1d(np.unique(s), [0, 1])
    if bad.size:
      raise ConfigError("scores: integer labels must be 0 or 1, found "
                        f"{bad[:5].tolist()}; pass float logits instead")
    return s == 1
  if not np.issubdtype(s.dtype, np.floating):
    raise ConfigError(f"scores: expected float logits or 0/1 labels, got "
                      f"dtype {s.dtype}")
  if not np.all(np.isfinite(s)):
    raise ConfigError(f"scores: expected finite logits, found "
                      f"{int(np.sum(~np.isfinite(s)))} NaN/inf values")
  return s > 0


def _sigmoid(m: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * m))  # stable for large |m|


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int
                  ) -> tuple[np.ndarray, float, int, bool]:
  """Minimises mean log-loss + l2/2 |w|^2 (bias unpenalised) by Newton.

  Args:
    x: latent codes [n, d] (float64).
    y: labels [n] in {0, 1} (float64).
    l2: ridge weight (> 0 makes the optimum unique even on separable data).
    steps: most Newton steps.

  Returns:
    (w [d], b, steps taken, converged).
  """
  n, d = x.shape
  xb = np.concatenate([x, np.ones((n, 1))], axis=1)  # [n, d + 1]
  ridge = np.full(d + 1, l2)
  ridge[d] = 0.0                                      # no penalty on the bias

  def loss(theta):
    m = xb @ theta                                    # [n]
    return (np.mean(np.logaddexp(0.0, m) - y * m)
            + 0.5 * np.sum(ridge * theta * theta))

  theta = np.zeros(d + 1)
  value = loss(theta)
  for step in range(1, steps + 1):
    p = _sigmoid(xb @ theta)                          # [n]
    grad = xb.T @ (p - y) / n + ridge * theta         # [d + 1]
    hess = (xb.T * (p * (1.0 - p))) @ xb / n          # [d + 1, d + 1]
    hess[np.diag_indices(d + 1)] += ridge + 1e-12
    delta = np.linalg.solve(hess, grad)
    decrement = float(grad @ delta)                   # Newton decrement^2
    if decrement < 1e-14:
      return theta[:d], float(theta[d]), step - 1, True
    t = 1.0                                           # backtracking (Armijo)
    while t > 1e-10:
      candidate = theta - t * delta
      new_value = loss(candidate)
      if new_value <= value - 0.25 * t * decrement:
        break
      t *= 0.5
    else:
      return theta[:d], float(theta[d]), step, False  # no further decrease
    theta, value = candidate, new_value
  return theta[:d], float(theta[d]), steps, False


def class_direction(z, scores, method: str = "logistic", l2: float = 1e-3,
                    steps: int = 500) -> dict:
  """The unit latent direction along which a classifier's output increases.

  Class 1 (the target, e.g. pneumonia) is `scores > 0` for float logits, or
  the label 1 for integer/bool labels; a logit of exactly 0 counts as 0.

    * "logistic": fits p(class 1 | z) = sigmoid(w.z + b) by minimising the
      mean log-loss + l2/2 |w|^2 (bias not penalised) with damped Newton
      steps (at most `steps`; typically 10-40), and returns the boundary
      normal u = w / |w| (InterFaceGAN, Shen et al. 2020). The ridge keeps
      the fit finite when the classes are linearly separable in z, which
      they are when the classifier is (nearly) linear in z.
    * "mean_difference": u = (mean z | 1 - mean z | 0) normalised; its
      boundary is the hyperplane normal to u through the midpoint of the two
      class means.

  Args:
    z: latent codes [n, d].
    scores: the classifier's logit of the target class [n] (float), or labels
      [n] in {0, 1} (int or bool), for the images generated from z.
    method: "logistic" or "mean_difference".
    l2: ridge weight of "logistic" (> 0).
    steps: most Newton steps of "logistic" (>= 1).

  Returns:
    {"direction": unit vector u [d] (float32), "offset": c such that
     u.z + c = 0 is the boundary (u.z + c is the signed distance from it),
     "fit_accuracy": fraction of z on the side of the boundary of its class,
     "n_per_class": [n0, n1], "method": method, "steps": Newton steps taken
     (0 for "mean_difference"), "converged": whether the fit converged}.

  Raises:
    ConfigError: shapes disagree, values are not finite, integer labels are
      not 0/1, one class is absent, or l2/steps are out of range.
    UnknownNameError: an unknown method.
  """
  if method not in METHODS:
    raise UnknownNameError(f"method: expected one of {', '.join(METHODS)}, "
                           f"got {method!r}")
  x = _codes(z)
  n, d = x.shape
  y = _labels(scores, n)
  counts = [int(np.sum(~y)), int(np.sum(y))]
  if min(counts) == 0:
    present = 1 if counts[1] else 0
    raise ConfigError(f"scores: expected both classes, but all {n} codes are "
                      f"class {present}; sample more codes or use another "
                      "threshold for the classifier")
  if method == "logistic":
    if not (np.isfinite(l2) and l2 > 0):
      raise ConfigError(f"l2: expected a positive number, got {l2}")
    if int(steps) != steps or steps < 1:
      raise ConfigError(f"steps: expected a positive integer, got {steps}")
    w, b, taken, converged = _fit_logistic(x, y.astype(np.float64), float(l2),
                                           int(steps))
    norm = np.linalg.norm(w)
    if norm == 0:
      raise ConfigError("scores: the logistic fit found no direction (w = 0); "
                        "raise steps or lower l2")
    u, offset = w / norm, b / norm
  else:
    mean0, mean1 = x[~y].mean(0), x[y].mean(0)        # [d], [d]
    diff = mean1 - mean0
    norm = np.linalg.norm(diff)
    if norm == 0:
      raise ConfigError("scores: the two class means are equal, so "
                        "mean_difference has no direction; use 'logistic'")
    u = diff / norm
    offset = -float(u @ (mean0 + mean1)) / 2
    taken, converged = 0, True
  accuracy = float(np.mean((x @ u + offset > 0) == y))
  return {"direction": u.astype(np.float32), "offset": float(offset),
          "fit_accuracy": accuracy, "n_per_class": counts, "method": method,
          "steps": int(taken), "converged": bool(converged)}


@functools.partial(jax.jit, static_argnums=0)
def _grad_sum(score_fn: Callable[[jax.Array], jax.Array],
              z: jax.Array) -> jax.Array:
  """Sum over the batch of d score_fn(z)_i / d z_i: [b, d] -> [d]."""
  def total(codes):
    out = score_fn(codes)
    if out.shape != codes.shape[:1]:
      raise ConfigError(f"score_fn: expected one score per code, shape "
                        f"[{codes.shape[0]}], got {out.shape}")
    return jnp.sum(out)
  return jnp.sum(jax.grad(total)(z), axis=0)


def gradient_direction(score_fn: Callable[[jax.Array], jax.Array], z,
                       batch_size: int | None = None) -> np.ndarray:
  """The normalised mean gradient of a differentiable score over codes z.

  u = mean_i grad score_fn(z)_i / |mean_i grad score_fn(z)_i|, each gradient
  with respect to its own code z_i, for a differentiable generator +
  classifier (score_fn closes over both). Gradients are those of
  sum_i score_fn(z)_i with respect to the batch, which gives every code its
  own gradient only because score_fn treats codes independently (no batch
  statistics). score_fn is a static argument of `jax.jit`: pass the same
  callable on every call to reuse the compiled program.

  Args:
    score_fn: a jax-differentiable function of codes [b, d] -> scores [b].
    z: latent codes [n, d].
    batch_size: most codes per call of score_fn (None: all n at once).

  Returns:
    unit direction [d] (float32).

  Raises:
    ConfigError: z is not [n, d] and finite, score_fn does not return [b],
      or the mean gradient is zero or not finite.
  """
  x = _codes(z).astype(np.float32)
  n = x.shape[0]
  if batch_size is not None and (int(batch_size) != batch_size
                                 or batch_size < 1):
    raise ConfigError(f"batch_size: expected a positive integer or None, got "
                      f"{batch_size}")
  chunk = n if batch_size is None else int(batch_size)
  total = np.zeros(x.shape[1], np.float64)
  for start in range(0, n, chunk):
    batch = jnp.asarray(x[start:start + chunk])      # [<= chunk, d]
    total += np.asarray(_grad_sum(score_fn, batch), np.float64)
  mean = total / n
  norm = np.linalg.norm(mean)
  if not np.isfinite(norm) or norm == 0:
    raise ConfigError(f"score_fn: the mean gradient over z has norm {norm}; "
                      "expected a finite non-zero gradient")
  return (mean / norm).astype(np.float32)


def _alphas(alphas) -> np.ndarray:
  a = np.asarray(alphas, np.float64)
  if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
    raise ConfigError(f"alphas: expected a non-empty 1-D list of finite "
                      f"step sizes, got shape {a.shape}")
  return a


def walk(z0, direction, alphas: Sequence[float], keep_norm: bool = False
         ) -> np.ndarray:
  """Latent codes z0 + alpha * u for each code and step size.

  u is `direction` scaled to unit length, so alpha is the distance moved in
  z space (a direction from `class_direction` or `gradient_direction` is
  already unit length).

  With keep_norm, each walked code is rescaled to the norm of its z0:
  z0 + alpha u becomes (z0 + alpha u) |z0| / |z0 + alpha u|. Codes drawn
  from a d-dimensional standard normal lie near the sphere of radius
  sqrt(d), and a generator has seen little outside it; rescaling keeps the
  walk there (a large alpha then turns z0 towards |z0| u rather than
  leaving the shell). A code whose walked point is 0 stays 0.

  Args:
    z0: starting codes [n, d] (or one code [d], treated as [1, d]).
    direction: latent direction [d] (any non-zero length).
    alphas: step sizes [a], e.g. np.linspace(-3, 3, 7).
    keep_norm: rescale each walked code to the norm of its z0.

  Returns:
    codes [n, a, d] (float32): codes[i, j] = z0[i] + alphas[j] * u, rescaled
    if keep_norm.

  Raises:
    ConfigError: bad shapes, non-finite values or a zero direction.
  """
  x = _codes(np.atleast_2d(z0) if np.ndim(z0) == 1 else z0, "z0")  # [n, d]
  u = _unit(direction, x.shape[1])                                   # [d]
  a = _alphas(alphas)                                                # [a]
  codes = x[:, None, :] + a[None, :, None] * u                       # [n, a, d]
  if keep_norm:
    target = np.linalg.norm(x, axis=-1)[:, None, None]               # [n, 1, 1]
    norm = np.linalg.norm(codes, axis=-1, keepdims=True)             # [n, a, 1]
    codes = np.where(norm > 0, codes * target / np.where(norm > 0, norm, 1),
                     codes)
  return codes.astype(np.float32)


def walk_effect(score_fn: ScoreFn, z0, direction, alphas: Sequence[float],
                keep_norm: bool = False, target_name: str = "target") -> dict:
  """How a classifier's output changes along a latent walk.

  Scores every column of `walk(z0, direction, alphas, keep_norm)` with one
  call of score_fn per alpha (n codes at a time).

  Args:
    score_fn: codes [n, d] -> the classifier's logit of the target class [n]
      (numpy in and out; a jax function's output is converted), e.g. the
      classifier applied to the generator's images.
    z0: starting codes [n, d].
    direction: latent direction [d].
    alphas: step sizes [a].
    keep_norm: as in `walk`.
    target_name: the target class's name for the summary, e.g. "pneumonia".

  Returns:
    {"alphas": [a], "mean_score": [a], "std_score": [a] (population std over
     the n codes), "fraction_target": [a] (fraction with score > 0),
     "scores": [n, a], "summary": one line such as "moving +3 along the
     direction takes the pneumonia fraction from 0.62 to 0.97 (mean score
     0.41 -> 2.90)", comparing the alpha nearest 0 with the largest alpha}.

  Raises:
    ConfigError: bad shapes, or score_fn returns other than n finite scores.
  """
  codes = walk(z0, direction, alphas, keep_norm)                 # [n, a, d]
  a = _alphas(alphas)
  n = codes.shape[0]
  scores = np.empty((n, len(a)), np.float64)                     # [n, a]
  for j in range(len(a)):
    s = np.asarray(score_fn(codes[:, j]), np.float64)
    if s.shape != (n,):
      raise ConfigError(f"score_fn: expected one score per code, shape [{n}],"
                        f" got {s.shape}")
    if not np.all(np.isfinite(s)):
      raise ConfigError(f"score_fn: expected finite scores, got NaN/inf at "
                        f"alpha={a[j]:g}")
    scores[:, j] = s
  mean, std = scores.mean(0), scores.std(0)
  fraction = np.mean(scores > 0, axis=0)
  start, end = int(np.argmin(np.abs(a))), int(np.argmax(a))
  summary = (f"moving {a[end] - a[start]:+g} along the direction takes the "
             f"{target_name} fraction from {fraction[start]:.2f} to "
             f"{fraction[end]:.2f} (mean score {mean[start]:.2f} -> "
             f"{mean[end]:.2f})")
  return {"alphas": a, "mean_score": mean, "std_score": std,
          "fraction_target": fraction, "scores": scores, "summary": summary}
