"""Fashion-MNIST and MNIST: find the four IDX files, verify their SHA-256, load them.

Where the files are looked for, in order:

1. ``data_dir`` (an argument): the folder holding the four files, or a folder holding
   ``fashion-mnist/`` (``mnist/``) with them. Never downloads.
2. The ``FNNJAX_DATA`` environment variable: a folder holding ``fashion-mnist/`` (``mnist/``).
   Never downloads.
3. The cache folder (``$XDG_CACHE_HOME/fnnjax`` or ``~/.cache/fnnjax``, or ``cache_dir``), into
   ``fashion-mnist/`` (``mnist/``) of which the official files are downloaded when missing.

A folder's files are verified against a ``SHA256SUMS`` file in it when there is one (the format
``sha256sum`` writes), otherwise against the official checksums. Downloads go through ``pooch``:
each file is fetched into a temporary file, its SHA-256 checked, and only then moved into place,
so an interrupted or wrong download never leaves a bad file; the next mirror is tried on failure.
When every mirror fails, :class:`DownloadError` says why in a few words (``no network:
NameResolutionError``) and where to put the files instead, and the cache folders the attempt
created are removed again (nothing is left behind but files that were downloaded and verified).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnnjax._idx import read_idx
from fnnjax.errors import DataError

__all__ = [
    "DATASETS",
    "DATA_ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "Dataset",
    "DatasetSpec",
    "DownloadError",
    "default_cache_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
]

DATA_ENV_VAR = "FNNJAX_DATA"
"""The environment variable naming a folder that holds ``fashion-mnist/`` and/or ``mnist/``."""

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's class names, by label 0..9."""

MNIST_CLASSES = tuple(str(d) for d in range(10))
"""MNIST's class names, by label 0..9."""

_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a data set comes from and how to check it.

    Attributes:
      name: the name used by :func:`load_dataset` and as the folder name (``fashion-mnist``).
      title: the name for messages.
      urls: base URLs tried in order; each holds the four files.
      sha256: file name -> the SHA-256 of the official file.
      classes: class names by label.
    """

    name: str
    title: str
    urls: tuple[str, ...]
    sha256: dict[str, str]
    classes: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """The four file names: train images, train labels, test images, test labels."""
        return tuple(_FILES.values())


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        urls=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={  # the official release (zalandoresearch/fashion-mnist, data/fashion)
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        classes=FASHION_MNIST_CLASSES,
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        sha256={  # the files of yann.lecun.com/exdb/mnist (the mirrors serve the same bytes)
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        classes=MNIST_CLASSES,
    ),
}
"""The data sets :func:`load_dataset` knows, by name."""


class Dataset(NamedTuple):
    """A loaded data set (numpy arrays on the host).

    Attributes:
      x_train: ``(N, 784)`` float32 in [0, 1] (``(N, 28, 28)`` with ``flatten=False``).
      y_train: ``(N,)`` int32 labels 0..9.
      x_test: ``(N_test, 784)`` float32 (or ``(N_test, 28, 28)``).
      y_test: ``(N_test,)`` int32.
      classes: the class names by label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]


Fetch = Callable[[str, Path], None]
"""``fetch(url, destination)``: download ``url`` into the file ``destination``."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fnnjax`` if that variable is set, else ``~/.cache/fnnjax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fnnjax"


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


OFFLINE_GUIDE = "docs/how-to/data-offline.md"
"""The page that says how to give fnnjax the data set without a network."""


class DownloadError(FileNotFoundError):
    """A data set that is not on this machine and could not be downloaded (no network, a mirror
    that answers with an error, a download whose checksum is wrong). A ``FileNotFoundError``.

    Its message is one line: what failed, why in a few words, and how to give the files instead.
    :meth:`advice` words that line for another interface (the command line says ``--data-dir DIR``
    where Python says ``data_dir=DIR``).

    Attributes:
      title: the data set's name for messages (``Fashion-MNIST``).
      name: its folder name (``fashion-mnist``).
      reason: why the download failed, in a few words (``no network: NameResolutionError``).

    Example:
      >>> from fnnjax.data import DownloadError
      >>> err = DownloadError("MNIST", "mnist", "no network: NameResolutionError")
      >>> print(err.advice("--data-dir DIR"))  # doctest: +NORMALIZE_WHITESPACE
      cannot download MNIST (no network: NameResolutionError): pass --data-dir DIR holding its four IDX
      files, or set FNNJAX_DATA to a folder holding mnist/; see docs/how-to/data-offline.md
    """

    def __init__(self, title: str, name: str, reason: str):
        self.title, self.name, self.reason = title, name, reason
        super().__init__(self.advice("data_dir=DIR"))

    def advice(self, option: str) -> str:
        """The message with ``option`` as the way to pass a local folder (``data_dir=DIR``,
        ``--data-dir DIR``)."""
        return (
            f"cannot download {self.title} ({self.reason}): pass {option} holding its four IDX files, "
            f"or set {DATA_ENV_VAR} to a folder holding {self.name}/; see {OFFLINE_GUIDE}"
        )

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return type(self), (self.title, self.name, self.reason)


def _downloader(fetch: Fetch | None):
    """A pooch downloader: pooch's HTTP downloader (a progress bar only on a terminal), or ``fetch``."""
    import pooch

    from fnnjax._progress import show_progress

    if fetch is None:
        return pooch.HTTPDownloader(progressbar=show_progress(), timeout=60)
    return lambda url, output_file, _pooch=None, check_only=False: fetch(url, Path(output_file))


def _innermost(err: BaseException) -> BaseException:
    """The error at the bottom of a network library's wrapping (requests' ``ConnectionError``
    holds urllib3's ``MaxRetryError``, whose ``reason`` is e.g. a ``NameResolutionError``)."""
    seen = [err]
    while len(seen) < 8:
        inner = getattr(seen[-1], "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen[-1].args if isinstance(a, BaseException)), None)
        if inner is None or inner in seen:
            break
        seen.append(inner)
    return seen[-1]


def _reason(err: BaseException) -> str:
    """Why a download failed, in a few words: ``no network: NameResolutionError``, ``HTTP 404``,
    or the error's own first line when it is short."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    offline: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    try:
        import requests

        offline += (requests.ConnectionError, requests.Timeout)
    except ImportError:  # pooch needs requests; a fetch of a test's may not
        pass
    inner = _innermost(err)
    if isinstance(err, offline) or isinstance(inner, offline) or "NameResolution" in type(inner).__name__:
        return f"no network: {type(inner).__name__}"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if text and len(text) <= 80 else type(inner).__name__


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs every download (``Downloading data from ...``) at INFO to stderr: not here; a
    progress bar on a terminal shows a download, and a failure is one error."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are empty: what a failed download created."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:  # not empty (something else is there now) or already gone
            break


def _read_sha256sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` output file: ``<64 hex>  <name>`` (or ``*<name>``) per line."""
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise DataError(
                f"{path} line {number} is {line!r}, not '<64 hex digits>  <file name>'; "
                "regenerate it with: sha256sum *.gz > SHA256SUMS"
            )
        sums[name] = digest.lower()
    return sums


def _present(folder: Path, spec: DatasetSpec) -> dict[str, Path]:
    """The data files found in folder: official name -> path (``X.gz``, else the plain ``X``)."""
    found = {}
    for name in spec.files:
        for candidate in (folder / name, folder / name.removesuffix(".gz")):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _verify(paths: dict[str, Path], folder: Path, spec: DatasetSpec) -> None:
    """Check every file against ``folder/SHA256SUMS`` if present, else the official sums."""
    sums_file = folder / "SHA256SUMS"
    if sums_file.is_file():
        expected, source = _read_sha256sums(sums_file), str(sums_file)
    else:
        expected, source = spec.sha256, f"the official {spec.title} checksums"
    for path in paths.values():
        if path.name not in expected:
            raise DataError(
                f"no SHA-256 for {path} in {source}; add its line to {sums_file} "
                f"(sha256sum {path.name} >> {sums_file}) or pass verify=False"
            )
        got = _sha256(path)
        if got != expected[path.name]:
            raise DataError(
                f"checksum mismatch for {path}: SHA-256 {got} but {source} say "
                f"{expected[path.name]}; the file is corrupt or not the one those checksums "
                "describe: replace it (or fix SHA256SUMS), or pass verify=False"
            )


def _where_to_put(spec: DatasetSpec, folder: Path) -> str:
    return (
        f"put the four {spec.title} files {', '.join(spec.files)} in {folder}/, or set "
        f"{DATA_ENV_VAR} to a folder holding {spec.name}/ with them, or pass data_dir=DIR"
    )


def _local_folder(spec: DatasetSpec, data_dir) -> Path:
    """The folder holding the files: data_dir itself or data_dir/<name>; error if neither."""
    base = Path(data_dir).expanduser()
    for folder in (base, base / spec.name):
        if len(_present(folder, spec)) == len(spec.files):
            return folder
    missing = [n for n in spec.files if n not in _present(base, spec)]
    raise FileNotFoundError(
        f"{spec.title} files not found in {base} (nor in {base / spec.name}): missing "
        f"{', '.join(missing)}; put the four files {', '.join(spec.files)} (gzip or plain) there"
    )


def _download(spec: DatasetSpec, folder: Path, missing: list[str], fetch: Fetch | None) -> None:
    """Fetch each missing file from the first URL that works (``pooch.retrieve``: into a temporary
    file, SHA-256 checked, then moved into place).

    Raises:
      DownloadError: when every URL of a file fails; the folders this call created are removed
        again if nothing was downloaded into them.
    """
    import pooch

    created = _missing_parents(folder)
    folder.mkdir(parents=True, exist_ok=True)
    downloader = _downloader(fetch)
    try:
        with _quiet_pooch():
            for name in missing:
                reasons: list[str] = []
                for base in spec.urls:
                    try:
                        # pooch's own HTTPDownloader does not fit its Downloader protocol (other parameter names)
                        pooch.retrieve(
                            base + name,
                            known_hash=f"sha256:{spec.sha256[name]}",
                            fname=name,
                            path=folder,
                            downloader=downloader,  # pyright: ignore[reportArgumentType]
                        )
                        break
                    except ValueError:  # pooch: the download's hash is not the known one
                        reason = "the download's SHA-256 is not the official one"
                    except (OSError, http.client.HTTPException) as err:  # requests' errors are OSErrors
                        reason = _reason(err)
                    if reason not in reasons:
                        reasons.append(reason)
                else:
                    raise DownloadError(spec.title, spec.name, "; ".join(reasons))
    except BaseException:
        _remove_empty(created)
        raise


def _cache_folder(spec: DatasetSpec, cache_dir, download: bool, fetch: Fetch | None) -> Path:
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / spec.name
    missing = [n for n in spec.files if n not in _present(folder, spec)]
    if missing and not download:
        raise FileNotFoundError(
            f"{spec.title} files not found ({', '.join(missing)} missing in {folder}) and "
            f"download=False; {_where_to_put(spec, folder)}"
        )
    if missing:
        _download(spec, folder, missing, fetch)
    return folder


def _find_folder(spec: DatasetSpec, data_dir, cache_dir, download: bool, fetch) -> Path:
    if data_dir is not None:
        return _local_folder(spec, data_dir)
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        folder = Path(env).expanduser() / spec.name
        missing = [n for n in spec.files if n not in _present(folder, spec)]
        if missing:
            raise FileNotFoundError(
                f"{DATA_ENV_VAR}={env} but {folder} lacks {', '.join(missing)}; put the four "
                f"{spec.title} files {', '.join(spec.files)} in {folder}/, or unset {DATA_ENV_VAR}"
            )
        return folder
    return _cache_folder(spec, cache_dir, download, fetch)


def _check_arrays(
    spec: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray, paths: tuple[Path, Path]
) -> None:
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{paths[0]} holds a {images.dtype} array of shape {images.shape}, but {spec.title} "
            "images are uint8 of shape (N, 28, 28)"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{paths[1]} holds a {labels.dtype} array of shape {labels.shape}, but {spec.title} "
            "labels are uint8 of shape (N,)"
        )
    if len(images) != len(labels):
        raise DataError(
            f"the {split} split has {len(images)} images ({paths[0]}) but {len(labels)} labels "
            f"({paths[1]}); the files do not belong together"
        )
    if labels.size and int(labels.max()) >= len(spec.classes):
        raise DataError(
            f"{paths[1]} holds label {int(labels.max())} but {spec.title} has "
            f"{len(spec.classes)} classes (labels 0..{len(spec.classes) - 1})"
        )


def _load_split(spec: DatasetSpec, paths: dict[str, Path], split: str, flatten: bool):
    image_path = paths[_FILES[f"{split}_images"]]
    label_path = paths[_FILES[f"{split}_labels"]]
    images, labels = read_idx(image_path), read_idx(label_path)
    _check_arrays(spec, split, images, labels, (image_path, label_path))
    x = images.astype(np.float32) / np.float32(255.0)
    if flatten:
        x = x.reshape(len(x), -1)
    return x, labels.astype(np.int32)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    flatten: bool = True,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    verify: bool = True,
    fetch: Fetch | None = None,
) -> Dataset:
    """Load Fashion-MNIST or MNIST as float32 images in [0, 1] and int32 labels.

    The files are looked for in ``data_dir`` (the folder itself or its ``<name>/``), else in
    ``$FNNJAX_DATA/<name>/``, else in ``<cache_dir>/<name>/`` where the official files are
    downloaded when missing. They are verified against ``SHA256SUMS`` in their folder when present,
    otherwise against the official SHA-256 checksums (:data:`DATASETS`).

    Args:
      name: ``"fashion-mnist"`` or ``"mnist"`` (the keys of :data:`DATASETS`).
      data_dir: a local folder; files there are used as they are and nothing is downloaded.
      flatten: images as ``(N, 784)`` (default) or ``(N, 28, 28)``.
      download: whether a missing cache may be filled from the official URLs.
      cache_dir: the cache folder (default :func:`default_cache_dir`).
      verify: check SHA-256 checksums (default True).
      fetch: ``fetch(url, destination_path)`` used to download (default: pooch's HTTP downloader);
        tests inject one.

    Returns:
      A :class:`Dataset` ``(x_train (N, 784) float32, y_train (N,) int32, x_test, y_test, classes)``;
      for Fashion-MNIST N = 60000 and N_test = 10000.

    Raises:
      ValueError: for an unknown name.
      DataError (a ValueError): for a checksum mismatch, or corrupt/mismatched files.
      FileNotFoundError: when the files are not found and cannot be downloaded; the message says
        which files to put in which folder.

    Example:
      >>> from fnnjax import data
      >>> ds = data.load_dataset("fashion-mnist")  # doctest: +SKIP
      >>> ds.x_train.shape, ds.y_train.dtype       # doctest: +SKIP
      ((60000, 784), dtype('int32'))
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names are {', '.join(DATASETS)}")
    spec = DATASETS[name]
    folder = _find_folder(spec, data_dir, cache_dir, download, fetch)
    paths = _present(folder, spec)
    if verify:
        _verify(paths, folder, spec)
    x_train, y_train = _load_split(spec, paths, "train", flatten)
    x_test, y_test = _load_split(spec, paths, "test", flatten)
    return Dataset(x_train, y_train, x_test, y_test, spec.classes)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """Fashion-MNIST: ``load_dataset("fashion-mnist", data_dir, **options)``.

    60000 training and 10000 test images, 28x28 grayscale scaled to [0, 1], 10 classes
    (:data:`FASHION_MNIST_CLASSES`). See :func:`load_dataset` for the arguments and errors.

    Example:
      >>> from fnnjax import data
      >>> data.load_fashion_mnist("/data").x_test.shape  # doctest: +SKIP
      (10000, 784)
    """
    return load_dataset("fashion-mnist", data_dir, **options)


def load_mnist(data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """MNIST: ``load_dataset("mnist", data_dir, **options)`` (handwritten digits 0..9).

    See :func:`load_dataset` for the arguments and errors.

    Example:
      >>> from fnnjax import data
      >>> data.load_mnist(flatten=False).x_train.shape  # doctest: +SKIP
      (60000, 28, 28)
    """
    return load_dataset("mnist", data_dir, **options)
