"""``fnnjax.data``: data sets for training and for the notes' small experiments.

- IDX files (the (Fashion-)MNIST format): :func:`read_idx`, :func:`write_idx`.
- Fashion-MNIST and MNIST: :func:`load_fashion_mnist`, :func:`load_mnist`, :func:`load_dataset`
  (a local folder, ``$FNNJAX_DATA``, or a verified download into a cache folder).
- A deterministic train/validation split: :func:`train_val_split` (F26).
- The notes' small sets: :func:`logic_gate` (AND/OR/NOT/XOR, F4), :func:`u_shaped` and
  :func:`quadratic` (1-D regression, F3, F25).

Every loader returns numpy arrays on the host; move them to the device with ``jnp.asarray``.

Example:
  >>> from fnnjax import data
  >>> x, y = data.logic_gate("and")
  >>> x.shape, y.tolist()
  ((4, 2), [0.0, 0.0, 0.0, 1.0])
"""

from fnnjax._datasets import (
    DATA_ENV_VAR,
    DATASETS,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    Dataset,
    DatasetSpec,
    DownloadError,
    default_cache_dir,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from fnnjax._idx import IDX_DTYPES, read_idx, write_idx
from fnnjax._split import Split, train_val_split
from fnnjax._toy_data import LOGIC_GATES, logic_gate, quadratic, u_shaped
from fnnjax.errors import DataError

__all__ = [
    "DATASETS",
    "DATA_ENV_VAR",
    "DataError",
    "FASHION_MNIST_CLASSES",
    "IDX_DTYPES",
    "LOGIC_GATES",
    "MNIST_CLASSES",
    "Dataset",
    "DatasetSpec",
    "DownloadError",
    "Split",
    "default_cache_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "logic_gate",
    "quadratic",
    "read_idx",
    "train_val_split",
    "u_shaped",
    "write_idx",
]
