"""PCA + KDE digit generator: fit, sample (optionally per digit), save, load.

Images (pixels scaled to [0, 1]) are reduced with PCA; a kernel density
estimate over the reduced points models their distribution. Sampling picks a
training point (of the requested digit, or of any digit) and adds kernel noise
(:func:`kde_sample`, for the gaussian, tophat, epanechnikov and exponential
kernels), then maps the point back to pixels. A reconstruction from a few components leaves a faint
haze where MNIST has a blank background, so pixels below a background level are
set to 0 and the rest rescaled; the level is measured, not tuned: the one that
makes reconstructed training images as often blank as the real ones.

One KDE per digit is the same kernel over that digit's points, so all digits
share one bandwidth, chosen by cross-validated log-likelihood on the pooled data.

Models are saved as one ``.npz`` of plain arrays plus a JSON metadata string
and loaded with ``allow_pickle=False``: loading never runs code from the file.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import gammainc
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from digitlab import paths
from digitlab.errors import UserError
from digitlab.repro import atomic_write

FORMAT = "digitlab-generator"
FORMAT_VERSION = 1
MODEL_FILENAME = "generator.npz"
# The radially symmetric kernels of scikit-learn's KernelDensity that kde_sample draws from.
KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential")
DEFAULT_COMPONENTS = 50
DEFAULT_MAX_SAMPLES = 10_000
DEFAULT_CV_FOLDS = 3
IMAGE_SHAPE = (28, 28)
FIT_COMMAND = "make generator (or python scripts/fit_generator.py)"
_ARRAYS = ("components", "mean", "explained_variance", "explained_variance_ratio",
           "points", "labels", "bandwidth", "kernel", "background", "format", "version",
           "metadata")


# Log10 ranges of the candidate bandwidths, in PCA units of images scaled to [0, 1]. The
# compact kernels (tophat, epanechnikov) give a held-out image zero density unless a
# training point lies within one bandwidth, so their useful bandwidths start near the
# largest nearest-neighbour distance (about 5 to 7 for 12 to 50 components); an
# exponential kernel spreads its mass over a radius of about d bandwidths, so its useful
# bandwidths are smaller than a gaussian's. On 300 to 3,500 embedded digits and 8 to 50
# components every kernel's chosen bandwidth lies inside its range (the tests check two
# such fits).
_GRID_LOG10 = {"gaussian": (-1.0, 0.5), "tophat": (0.5, 1.25), "epanechnikov": (0.5, 1.5),
               "exponential": (-2.0, 0.0)}


def default_grid(kernel: str = "gaussian", n: int = 16) -> np.ndarray:
    """``n`` log-spaced candidate bandwidths for ``kernel``, in PCA units of [0, 1] images."""
    check_kernel(kernel)
    return np.logspace(*_GRID_LOG10[kernel], n)


def model_path(model_dir: str | os.PathLike | None = None) -> Path:
    return Path(model_dir if model_dir is not None else paths.generator_dir()) / MODEL_FILENAME


def check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise UserError(f"kernel {kernel!r} cannot be sampled from; choose one of "
                        f"{', '.join(KERNELS)}.")
    return kernel


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float64 rows (N, 784) in [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def select_training_images(images: np.ndarray, labels: np.ndarray, max_samples: int | None,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_samples`` images (None: all), a seeded random subset when there are more."""
    if max_samples is None:
        return images, labels
    if max_samples < 1:
        raise UserError(f"max_samples must be at least 1, got {max_samples}.")
    if len(images) <= max_samples:
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), max_samples, replace=False))
    return images[keep], labels[keep]


@dataclass
class BandwidthSearch:
    """Cross-validated bandwidth choice; scores are mean held-out log-likelihood per image."""

    grid: np.ndarray
    mean_scores: np.ndarray
    std_scores: np.ndarray
    folds: int
    best: float

    def as_dict(self) -> dict:
        """JSON-ready; a bandwidth whose held-out likelihood is zero scores None (-inf)."""
        def finite(values):
            return [float(v) if np.isfinite(v) else None for v in values]

        return {"grid": self.grid, "mean_log_likelihood": finite(self.mean_scores),
                "std_log_likelihood": finite(self.std_scores), "folds": self.folds,
                "best_bandwidth": self.best}

    @classmethod
    def from_dict(cls, d: dict) -> BandwidthSearch:
        """Inverse of :meth:`as_dict` (None scores back to -inf)."""
        def scores(values):
            return np.array([-np.inf if v is None else v for v in values], dtype=float)

        return cls(np.asarray(d["grid"], dtype=float), scores(d["mean_log_likelihood"]),
                   scores(d["std_log_likelihood"]), int(d["folds"]), float(d["best_bandwidth"]))


def select_bandwidth(latent: np.ndarray, kernel: str = "gaussian", grid=None,
                     folds: int = DEFAULT_CV_FOLDS, random_state: int = 0,
                     progress: bool = True) -> BandwidthSearch:
    """``GridSearchCV`` over ``grid`` maximising held-out log-likelihood (with a progress bar)."""
    grid = np.asarray(default_grid(kernel) if grid is None else grid, dtype=float)
    bar = tqdm(total=len(grid) * folds, desc="bandwidth CV", unit="fit", disable=not progress,
               leave=False)

    def mean_log_likelihood(estimator, x, y=None):
        bar.update(1)
        return estimator.score(x) / len(x)

    search = GridSearchCV(KernelDensity(kernel=kernel), {"bandwidth": grid}, refit=False,
                          cv=KFold(folds, shuffle=True, random_state=random_state),
                          scoring=mean_log_likelihood)
    with bar, warnings.catch_warnings(), np.errstate(invalid="ignore"):
        # A too-narrow top-hat scores -inf; that is an answer, not a warning.
        warnings.filterwarnings("ignore", message=".*non-finite.*")
        search.fit(latent)
    means = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    if not np.isfinite(means).any():
        raise UserError(f"no bandwidth in the grid {grid.min():.3g}..{grid.max():.3g} gives the "
                        f"held-out images a finite likelihood with the {kernel} kernel; "
                        "give a larger bandwidth.")
    best = float(grid[int(np.nanargmax(np.where(np.isfinite(means), means, -np.inf)))])
    return BandwidthSearch(grid, means, np.asarray(search.cv_results_["std_test_score"]),
                           folds, best)


def kde_sample(points: np.ndarray, bandwidth: float, kernel: str, n: int, rng) -> np.ndarray:
    """Draw ``n`` points from the KDE over ``points`` (any kernel of :data:`KERNELS`).

    Each kernel depends on the distance r only, so a draw is a training point
    plus a uniformly random direction times a radius whose density in d
    dimensions is proportional to r^(d-1) K(r/h) (:func:`unit_radius`).
    Gaussian and tophat draws are made exactly as ``KernelDensity.sample``
    makes them: with a ``RandomState`` they equal scikit-learn's for the same
    state. ``rng`` is a NumPy ``Generator`` or ``RandomState``.
    """
    i = (rng.uniform(0, 1, size=n) * len(points)).astype(np.int64)
    if kernel == "gaussian":
        return np.atleast_2d(rng.normal(points[i], bandwidth))
    dim = points.shape[1]
    x = rng.normal(size=(n, dim))  # its direction is uniform on the sphere
    s_sq = np.einsum("ij,ij->i", x, x)
    if kernel == "tophat":
        # scikit-learn's way: the chi_d CDF of |x| is uniform, and U^(1/d) is the
        # radius of a uniform draw in the unit ball.
        radius = gammainc(0.5 * dim, 0.5 * s_sq) ** (1.0 / dim)
    else:
        radius = unit_radius(kernel, dim, n, rng)
    return points[i] + x * (radius * bandwidth / np.sqrt(s_sq))[:, np.newaxis]


def unit_radius(kernel: str, dim: int, n: int, rng) -> np.ndarray:
    """``n`` draws of u = r / h for the epanechnikov or exponential kernel in ``dim`` dimensions.

    u has density proportional to u^(d-1) K(u). For the gaussian kernel,
    K = exp(-u^2 / 2), that is the chi law with d degrees of freedom, and for the
    tophat, K = 1 on u < 1, the law of U^(1/d) with U uniform: :func:`kde_sample`
    draws those two as scikit-learn does. Here:

    - epanechnikov, K = 1 - u^2 on u < 1: v = u^2 has density proportional to
      v^(d/2 - 1) (1 - v), the Beta(d/2, 2) law;
    - exponential, K = exp(-u): the Gamma(d, 1) law.
    """
    if kernel == "epanechnikov":
        return np.sqrt(rng.beta(0.5 * dim, 2.0, size=n))
    if kernel == "exponential":
        return rng.gamma(dim, 1.0, size=n)
    raise ValueError(f"no radius law for kernel {kernel!r} here")


def _one_blas_thread():
    """These decompositions are small; a second BLAS thread only helps on an idle
    machine and, on a busy one, spin-waiting can make them a hundred times slower."""
    return threadpool_limits(limits=1, user_api="blas")


def as_rng(seed) -> np.random.Generator | np.random.RandomState:
    """A fresh RNG for one call (or the caller's own): no shared global state."""
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.default_rng(seed)


@dataclass
class DigitGenerator:
    components: np.ndarray           # (k, 784) PCA axes
    mean: np.ndarray                 # (784,) mean image, pixels in [0, 1]
    explained_variance: np.ndarray   # (k,)
    explained_variance_ratio: np.ndarray  # (k,) of the training data's total variance
    points: np.ndarray               # (N, k) training images in PCA space
    labels: np.ndarray               # (N,) their digits
    bandwidth: float
    kernel: str = "gaussian"
    background: float = 0.0          # pixel level (in [0, 1)) mapped to blank; 0: plain clipping
    metadata: dict = field(default_factory=dict)
    _by_digit: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._by_digit = {int(d): self.points[self.labels == d] for d in np.unique(self.labels)}

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def variance_explained(self) -> float:
        return float(self.explained_variance_ratio.sum())

    @property
    def digits(self) -> list[int]:
        return sorted(self._by_digit)

    def encode(self, images: np.ndarray) -> np.ndarray:
        return (to_unit(images) - self.mean) @ self.components.T

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """PCA points -> uint8 images (N, 28, 28): haze below ``background`` blanked, clipped."""
        pixels = latent @ self.components + self.mean
        pixels = np.clip((pixels - self.background) / (1.0 - self.background), 0.0, 1.0)
        return np.rint(pixels * 255).astype(np.uint8).reshape(-1, *IMAGE_SHAPE)

    def sample_latent(self, n: int, digit: int | None = None, seed=None) -> np.ndarray:
        if digit is None:
            points = self.points
        elif int(digit) in self._by_digit:
            points = self._by_digit[int(digit)]
        else:
            raise UserError(f"digit {digit} is not one the generator was fitted on "
                            f"({', '.join(map(str, self.digits))}).")
        return kde_sample(points, self.bandwidth, self.kernel, int(n), as_rng(seed))

    def sample(self, n: int, digit: int | None = None, seed=None) -> np.ndarray:
        """``n`` new uint8 images (N, 28, 28) of ``digit`` (any digit if None).

        ``seed``: an int (same seed, same images), a NumPy Generator/RandomState,
        or None for fresh entropy.
        """
        return self.decode(self.sample_latent(n, digit, seed))

    def measured_variance_explained(self, images: np.ndarray) -> float:
        """1 - squared reconstruction error / total squared deviation, on ``images``."""
        x = to_unit(images)
        centred = x - self.mean
        residual = centred - (centred @ self.components.T) @ self.components
        return float(1.0 - (residual ** 2).sum() / ((x - x.mean(0)) ** 2).sum())

    def stats(self) -> dict:
        """The model in the generator API's ``/stats`` names, then digitlab's own fields."""
        return {
            "pca_components": self.n_components,
            "variance_explained": self.variance_explained,
            "kde_bandwidth": float(self.bandwidth),
            "original_dim": int(self.components.shape[1]),
            "reduced_dim": self.n_components,
            "kernel": self.kernel,
            "background": float(self.background),
            "n_train": int(len(self.points)),
            "per_digit": {str(d): int(len(p)) for d, p in self._by_digit.items()},
            "data_source": self.metadata.get("data", {}).get("source"),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters to one ``.npz`` (atomically; no pickled objects)."""
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(
                handle, components=self.components, mean=self.mean,
                explained_variance=self.explained_variance,
                explained_variance_ratio=self.explained_variance_ratio,
                points=self.points, labels=self.labels.astype(np.int64),
                bandwidth=np.float64(self.bandwidth), kernel=np.str_(self.kernel),
                background=np.float64(self.background),
                format=np.str_(FORMAT), version=np.int64(FORMAT_VERSION),
                metadata=np.str_(json.dumps(self.metadata)))
        return Path(path)


def fit_generator(images: np.ndarray, labels: np.ndarray, *,
                  n_components: int = DEFAULT_COMPONENTS, bandwidth: float | str = "cv",
                  kernel: str = "gaussian", background: float | str = "auto", grid=None,
                  folds: int = DEFAULT_CV_FOLDS, kde_points: int | None = None,
                  random_state: int = 0, progress: bool = True,
                  metadata: dict | None = None) -> tuple[DigitGenerator, BandwidthSearch | None]:
    """Fit PCA on every image, then the KDE bandwidth (``"cv"``: grid search; or a given
    number) on at most ``kde_points`` of them (None: all; a seeded subset otherwise, as
    the original generator kept 10,000 digits: every sample and every bandwidth score
    costs time in the number of points, while the components settle with far fewer).

    ``background``: ``"auto"`` measures it (:func:`background_level`); a number in
    [0, 1) sets it; 0 keeps plain clipping.
    """
    check_kernel(kernel)
    points_x, labels = select_training_images(images, labels, kde_points, random_state)
    _check_fit_options(bandwidth, background, folds, len(points_x))
    x = to_unit(images)
    if not 1 <= n_components <= min(x.shape):
        raise UserError(f"n_components must be between 1 and {min(x.shape)} for "
                        f"{len(x)} images, got {n_components}.")
    with _one_blas_thread():
        pca = PCA(n_components=n_components, random_state=random_state).fit(x)
        x = to_unit(points_x)
        latent = pca.transform(x)
    search = None
    if bandwidth == "cv":
        search = select_bandwidth(latent, kernel, grid, folds, random_state, progress)
        bandwidth = search.best
    if background == "auto":
        background = background_level(x, latent @ pca.components_ + pca.mean_)
    model = DigitGenerator(pca.components_, pca.mean_, pca.explained_variance_,
                           pca.explained_variance_ratio_, latent,
                           np.asarray(labels, dtype=np.int64), float(bandwidth), kernel,
                           float(background), dict(metadata or {}))
    return model, search


def _check_fit_options(bandwidth, background, folds: int, n_images: int) -> None:
    """Refuse impossible options before any work is done."""
    if bandwidth == "cv":
        if not 2 <= folds <= n_images:
            raise UserError(f"folds must be between 2 and the {n_images} training images, "
                            f"got {folds}.")
    elif not (isinstance(bandwidth, (int, float)) and 0 < bandwidth < np.inf):
        raise UserError(f"bandwidth must be a positive number or 'cv', got {bandwidth!r}.")
    if background != "auto" and not (isinstance(background, (int, float))
                                     and 0 <= background < 1):
        raise UserError(f"background must be 'auto' or a number in [0, 1), got {background!r}.")


def background_level(pixels: np.ndarray, reconstructed: np.ndarray) -> float:
    """The level below which reconstructed pixels are blank as often as real ones are."""
    blank = float((pixels == 0).mean())
    return float(np.quantile(np.clip(reconstructed, 0.0, 1.0), blank)) if blank > 0 else 0.0


def cumulative_variance(images: np.ndarray, max_components: int = 784) -> np.ndarray:
    """Cumulative fraction of variance explained by the first 1..k principal components."""
    x = to_unit(images)
    # Singular values alone (no singular vectors) are all the spectrum needs.
    with _one_blas_thread():
        singular = np.linalg.svd(x - x.mean(0), compute_uv=False)
    variances = singular ** 2
    return np.cumsum(variances)[:max_components] / variances.sum()


def load_generator(path: str | os.PathLike) -> DigitGenerator:
    """Read a model written by :meth:`DigitGenerator.save`; UserError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no generator model at {path}; fit one with {FIT_COMMAND}.")
    try:
        # A plain .npy file loads as an array, not an archive: check before using it.
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            missing = [k for k in _ARRAYS if k not in data.files]
            arrays = {k: data[k] for k in _ARRAYS if k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{path} is not a readable generator model ({_reason(err)}); "
                        f"refit it with {FIT_COMMAND}.") from None
    if missing or str(arrays["format"]) != FORMAT:
        raise UserError(f"{path} is not a digitlab generator model; refit it with {FIT_COMMAND}.")
    version = arrays["version"]
    if version.shape != () or not np.issubdtype(version.dtype, np.integer) \
            or int(version) != FORMAT_VERSION:
        raise UserError(f"{path} has generator format version {version}, this digitlab reads "
                        f"version {FORMAT_VERSION}; refit it with {FIT_COMMAND}.")
    try:
        model = DigitGenerator(
            arrays["components"], arrays["mean"], arrays["explained_variance"],
            arrays["explained_variance_ratio"], arrays["points"], arrays["labels"],
            float(arrays["bandwidth"]), check_kernel(str(arrays["kernel"])),
            float(arrays["background"]), json.loads(str(arrays["metadata"])))
        _check_shapes(model)
    except (ValueError, TypeError, UserError) as err:
        raise UserError(f"{path} holds an inconsistent generator model ({_reason(err)}); "
                        f"refit it with {FIT_COMMAND}.") from None
    return model


def saved_fit(images: np.ndarray, labels: np.ndarray, *, n_components: int, kernel: str,
              bandwidth: float | str, folds: int, kde_points: int | None = None, seed: int = 0,
              model_file=None, metrics_file=None
              ) -> tuple[DigitGenerator, BandwidthSearch | None] | None:
    """The model ``fit_generator.py`` saved and its bandwidth search, if it was fitted on
    exactly these images with these settings; None otherwise (then fit a new one).

    Saves the notebook a second cross-validated search right after ``make generator``.
    The two files are a pair only when they carry the same ``run_id`` (``fit_generator.py``
    writes one into both): a model beside the metrics of another fit is not reused.
    """
    metrics_file = Path(metrics_file or paths.generator_results() / "metrics.json")
    try:
        model = load_generator(model_file or model_path())
        metrics = json.loads(metrics_file.read_text())
        config, cv = metrics["run"]["config"], metrics["metrics"].get("bandwidth_cv")
    except (UserError, OSError, ValueError, KeyError, TypeError):
        return None
    images, labels = select_training_images(images, labels, kde_points, seed)
    same = (model.n_components == n_components and model.kernel == kernel
            and config.get("bandwidth") == bandwidth and config.get("background") == "auto"
            and (cv is None or cv.get("folds") == folds)
            and len(model.points) == len(images) and np.array_equal(model.labels, labels)
            and np.allclose(model.encode(images), model.points, atol=1e-6))
    if not same or metrics.get("run_id") != model.metadata.get("run_id"):
        return None
    return model, BandwidthSearch.from_dict(cv) if cv else None


def _check_shapes(m: DigitGenerator) -> None:
    k, d = m.components.shape
    if d != IMAGE_SHAPE[0] * IMAGE_SHAPE[1] or m.mean.shape != (d,):
        raise ValueError(f"components of shape {m.components.shape}")
    if m.points.ndim != 2 or m.points.shape[1] != k or m.labels.shape != (len(m.points),):
        raise ValueError(f"training points of shape {m.points.shape}")
    finite = all(np.isfinite(a).all() for a in (m.points, m.components, m.mean))
    if not (0 < m.bandwidth < np.inf and 0 <= m.background < 1 and finite and len(m.points)):
        raise ValueError("bandwidth, background, components or points not usable")
    if not isinstance(m.metadata, dict) or not isinstance(m.metadata.get("data", {}), dict):
        raise ValueError("metadata is not a JSON object")


def _reason(err: Exception) -> str:
    return str(err).strip().rstrip(".") or type(err).__name__


def sample_per_digit(model: DigitGenerator, n_per_digit: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_digit`` class-conditional samples of every digit, and the digits requested."""
    rng = np.random.default_rng(seed)
    images = np.concatenate([model.sample(n_per_digit, d, rng) for d in model.digits])
    return images, np.repeat(model.digits, n_per_digit).astype(np.int64)
