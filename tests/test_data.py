"""fnnjax.data: IDX files, the (Fashion-)MNIST loaders, the split and the notes' small data sets.

Every test writes its own tiny IDX files; nothing here touches the network (downloads go through
an injected ``fetch``).
"""

import dataclasses
import gzip
import hashlib
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from fnnjax import data
from fnnjax._datasets import DATASETS

_USER_DATA = os.environ.get("FNNJAX_DATA")  # read before the fixture below hides it

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    """No test sees the user's FNNJAX_DATA or cache."""
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_dataset(folder, n_train=5, n_test=3, *, seed=0, sums=True):
    """Write a tiny MNIST-shaped data set (4 gzip IDX files, optional SHA256SUMS); return arrays."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, (n_train,), dtype=np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for name, array in arrays.items():
        data.write_idx(folder / name, array)
    if sums:
        (folder / "SHA256SUMS").write_text("".join(f"{_sha(folder / name)}  {name}\n" for name in FILES))
    return arrays


# ----------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = data.write_idx(tmp_path / f"a-idx3{suffix}", array)
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_header_bytes_follow_the_format(tmp_path):
    path = data.write_idx(tmp_path / "l", np.array([7, 9], np.uint8))
    # magic 0x00000801 (uint8, 1 dim), then the size 2 big-endian, then the bytes
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])
    path = data.write_idx(tmp_path / "i", np.array([[1]], np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1])


def test_idx_gzip_detected_from_content_not_name(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    plain = data.write_idx(tmp_path / "x", array).read_bytes()
    (tmp_path / "named-plain").write_bytes(gzip.compress(plain))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "named-plain"), array)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b"\x01" + b[1:], r"magic number 0x01000801.*not an IDX file"),
        (lambda b: b[:2] + b"\x0a" + b[3:], r"magic number 0x00000a01"),
        (lambda b: b[:-1], r"declares shape \(4,\) of uint8 \(4 data bytes\) but holds 3.*truncated"),
        (lambda b: b + b"\x00", r"declares shape \(4,\).*but holds 5"),
        (lambda b: b[:6], r"declares 1 dimensions but has only 6 bytes.*truncated"),
        (lambda b: b[:3], r"3 bytes, fewer than the 4-byte IDX magic number"),
        (lambda b: b[:3] + b"\x00", r"declares 0 dimensions"),
    ],
)
def test_idx_corrupt_files_raise_clear_errors(tmp_path, mutate, match):
    good = data.write_idx(tmp_path / "good", np.arange(4, dtype=np.uint8)).read_bytes()
    (tmp_path / "bad").write_bytes(mutate(good))
    with pytest.raises(ValueError, match=match):
        data.read_idx(tmp_path / "bad")


def test_idx_truncated_gzip(tmp_path):
    good = data.write_idx(tmp_path / "g.gz", np.arange(100, dtype=np.uint8)).read_bytes()
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cut.gz is a corrupt or truncated gzip file"):
        data.read_idx(tmp_path / "cut.gz")


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"IDX file .*nope does not exist"):
        data.read_idx(tmp_path / "nope")


@pytest.mark.parametrize(
    "array, match",
    [
        (np.array(3, np.uint8), r"1 to 255 dimensions.*shape \(\)"),
        (np.zeros(2, np.int64), r"cannot store dtype int64"),
        (np.zeros(2, bool), r"cannot store dtype bool"),
    ],
)
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array, match):
    with pytest.raises(ValueError, match=match):
        data.write_idx(tmp_path / "x", array)


# ----------------------------------------------------------------------------------------------
# Loading a local folder


def test_load_local_folder_values_and_shapes(tmp_path):
    arrays = make_dataset(tmp_path / "fm")
    ds = data.load_fashion_mnist(tmp_path / "fm")
    assert ds.x_train.shape == (5, 784) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int32 and ds.x_test.shape == (3, 784)
    np.testing.assert_allclose(ds.x_train, arrays[FILES[0]].reshape(5, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays[FILES[3]])
    assert ds.classes == data.FASHION_MNIST_CLASSES and ds.classes[9] == "Ankle boot"
    square = data.load_fashion_mnist(tmp_path / "fm", flatten=False)
    assert square.x_test.shape == (3, 28, 28)
    np.testing.assert_array_equal(square.x_test.reshape(3, -1), ds.x_test)


def test_load_accepts_the_parent_folder_and_plain_files(tmp_path):
    arrays = make_dataset(tmp_path / "root" / "mnist", sums=False)
    folder = tmp_path / "root" / "mnist"
    for name in FILES:  # decompress: plain files are accepted under the name without .gz
        (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress((folder / name).read_bytes()))
        (folder / name).unlink()
    (folder / "SHA256SUMS").write_text(
        "".join(f"{_sha(folder / n.removesuffix('.gz'))} *{n.removesuffix('.gz')}\n" for n in FILES)
    )
    ds = data.load_mnist(tmp_path / "root")
    np.testing.assert_array_equal(ds.y_train, arrays[FILES[1]])
    assert ds.classes == data.MNIST_CLASSES


def test_checksum_mismatch_against_sha256sums(tmp_path):
    make_dataset(tmp_path)
    data.write_idx(tmp_path / FILES[3], np.array([1, 2, 3], np.uint8))  # not the listed file
    with pytest.raises(
        ValueError,
        match=r"checksum mismatch for .*t10k-labels-idx1-ubyte.gz: "
        r"SHA-256 [0-9a-f]{64} but .*SHA256SUMS say",
    ):
        data.load_fashion_mnist(tmp_path)
    assert data.load_fashion_mnist(tmp_path, verify=False).y_test.tolist() == [1, 2, 3]


def test_without_sha256sums_the_official_checksums_apply(tmp_path):
    make_dataset(tmp_path, sums=False)
    with pytest.raises(ValueError, match=r"checksum mismatch .* the official Fashion-MNIST checksums"):
        data.load_fashion_mnist(tmp_path)


def test_sha256sums_must_list_every_file_and_be_well_formed(tmp_path):
    make_dataset(tmp_path)
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(ValueError, match=r"no SHA-256 for .*t10k-labels-idx1-ubyte.gz in .*SHA256SUMS"):
        data.load_fashion_mnist(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("abc  t10k-labels-idx1-ubyte.gz\n")
    with pytest.raises(ValueError, match=r"SHA256SUMS line 1 is 'abc  t10k-labels.*64 hex digits"):
        data.load_fashion_mnist(tmp_path)


def test_files_that_do_not_belong_together(tmp_path):
    make_dataset(tmp_path, sums=False)
    data.write_idx(tmp_path / FILES[1], np.zeros(4, np.uint8))  # 4 labels for 5 images
    with pytest.raises(ValueError, match=r"train split has 5 images .* but 4 labels"):
        data.load_fashion_mnist(tmp_path, verify=False)
    data.write_idx(tmp_path / FILES[1], np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(ValueError, match=r"holds label 10 but Fashion-MNIST has 10 classes"):
        data.load_fashion_mnist(tmp_path, verify=False)
    data.write_idx(tmp_path / FILES[0], np.zeros((5, 784), np.uint8))
    with pytest.raises(ValueError, match=r"uint8 array of shape \(5, 784\).*\(N, 28, 28\)"):
        data.load_fashion_mnist(tmp_path, verify=False)


def test_missing_local_folder_names_the_folder_and_files(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=(
            rf"Fashion-MNIST files not found in {tmp_path / 'empty'} .*missing "
            r"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            r"t10k-labels-idx1-ubyte.gz"
        ),
    ):
        data.load_fashion_mnist(tmp_path / "empty", fetch=pytest.fail)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar'; valid names are fashion-mnist, mnist"):
        data.load_dataset("cifar")


# ----------------------------------------------------------------------------------------------
# FNNJAX_DATA and the cache


def test_fnnjax_data_environment_variable(tmp_path, monkeypatch):
    arrays = make_dataset(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("FNNJAX_DATA", str(tmp_path / "env"))
    ds = data.load_fashion_mnist(fetch=pytest.fail)
    np.testing.assert_array_equal(ds.y_train, arrays[FILES[1]])
    other = make_dataset(tmp_path / "arg", seed=1)  # an explicit folder wins over the variable
    np.testing.assert_array_equal(data.load_fashion_mnist(tmp_path / "arg").y_train, other[FILES[1]])
    with pytest.raises(
        FileNotFoundError,
        match=rf"FNNJAX_DATA={tmp_path / 'env'} but "
        rf"{tmp_path / 'env' / 'mnist'} lacks train-images",
    ):
        data.load_mnist(fetch=pytest.fail)


def test_no_network_and_no_files_gives_one_clear_error(tmp_path):
    def offline(url, destination):
        raise OSError("Network is unreachable")

    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist(cache_dir=cache, fetch=offline)
    assert isinstance(info.value, data.DownloadError)
    assert str(info.value) == (
        "cannot download Fashion-MNIST (Network is unreachable): pass data_dir=DIR holding its four IDX "
        "files, or set FNNJAX_DATA to a folder holding fashion-mnist/; see docs/how-to/data-offline.md"
    )
    assert not cache.exists(), "nothing is left behind: no partial file, no empty cache folder"
    with pytest.raises(FileNotFoundError, match=r"download=False; put the four"):
        data.load_fashion_mnist(cache_dir=cache, download=False)


def test_default_cache_dir_follows_xdg(tmp_path):
    assert data.default_cache_dir() == tmp_path / "xdg-cache" / "fnnjax"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A tiny 'official' release: files in a source folder, checksums patched into the spec."""
    source = tmp_path / "server"
    arrays = make_dataset(source, sums=False)
    spec = DATASETS["fashion-mnist"]
    monkeypatch.setitem(
        DATASETS,
        "fashion-mnist",
        dataclasses.replace(
            spec,
            urls=("https://bad.example/", "https://good.example/"),
            sha256={name: _sha(source / name) for name in FILES},
        ),
    )
    return source, arrays


def test_download_verifies_and_falls_back_to_the_next_url(tmp_path, served):
    source, arrays = served
    calls = []

    def fetch(url, destination):
        calls.append(url)
        name = url.rsplit("/", 1)[1]
        if url.startswith("https://bad.example/"):
            Path(destination).write_bytes(b"an html error page")
        else:
            shutil.copyfile(source / name, destination)

    cache = tmp_path / "cache"
    ds = data.load_fashion_mnist(cache_dir=cache, fetch=fetch)
    np.testing.assert_array_equal(ds.y_train, arrays[FILES[1]])
    assert calls == [base + name for name in FILES for base in ("https://bad.example/", "https://good.example/")]
    assert sorted(os.listdir(cache / "fashion-mnist")) == sorted(FILES)  # no .part files
    data.load_fashion_mnist(cache_dir=cache, fetch=pytest.fail)  # cached: no second download


def test_download_with_wrong_checksums_everywhere_fails(tmp_path, served):
    def fetch(url, destination):
        Path(destination).write_bytes(b"not the file")

    with pytest.raises(
        FileNotFoundError,
        match=r"^cannot download Fashion-MNIST \(the download's SHA-256 is not the official one\): pass data_dir",
    ):
        data.load_fashion_mnist(cache_dir=tmp_path / "cache", fetch=fetch)
    assert not (tmp_path / "cache").exists()


def test_corrupted_cache_file_is_reported(tmp_path, served):
    source, _ = served
    cache = tmp_path / "cache" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(source / name, cache / name)
    (cache / FILES[0]).write_bytes(b"flipped bits")
    with pytest.raises(ValueError, match=r"checksum mismatch for .*train-images-idx3-ubyte.gz"):
        data.load_fashion_mnist(cache_dir=tmp_path / "cache", fetch=pytest.fail)


@pytest.mark.skipif(
    not (_USER_DATA and (Path(_USER_DATA) / "fashion-mnist").is_dir()),
    reason="optional: set FNNJAX_DATA to a folder holding fashion-mnist/ to run",
)
def test_real_fashion_mnist(monkeypatch):
    """The full data set (optional): 60000/10000 images, pixel mean 0.2860 (the README's number)."""
    monkeypatch.setenv("FNNJAX_DATA", _USER_DATA)
    ds = data.load_fashion_mnist()
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert abs(float(ds.x_train.mean()) - 0.2860) < 1e-4
    assert np.bincount(ds.y_train).tolist() == [6000] * 10


# ----------------------------------------------------------------------------------------------
# Train/validation split


def test_split_is_a_deterministic_partition():
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20)
    a = data.train_val_split(x, y, seed=3, fraction=0.25)
    b = data.train_val_split(x, y, key=jax.random.key(3), count=5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a.x_val.shape == (5, 2) and a.x_train.shape == (15, 2)
    assert sorted(np.concatenate([a.y_train, a.y_val]).tolist()) == list(range(20))
    np.testing.assert_array_equal(a.x_train[:, 0], 2 * a.y_train)  # rows stay paired
    c = data.train_val_split(x, y, seed=4, fraction=0.25)
    assert not np.array_equal(a.y_val, c.y_val)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seed=0), r"exactly one of fraction= .* or count="),
        (dict(seed=0, fraction=0.1, count=1), r"exactly one of fraction="),
        (dict(fraction=0.1), r"exactly one of key= .* or seed="),
        (dict(seed=0, key=jax.random.key(0), count=1), r"exactly one of key="),
        (dict(seed=0, count=10), r"count=10 but the validation part must hold 1..9 of the 10"),
        (dict(seed=0, fraction=1.0), r"fraction=1.0 but it must lie strictly between 0 and 1"),
        (dict(seed=0, fraction=0.01), r"fraction=0.01 of 10 samples gives 0 validation samples"),
    ],
)
def test_split_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.train_val_split(np.zeros((10, 3)), np.zeros(10), **kwargs)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match=r"x has shape \(10, 3\) and y has shape \(9,\)"):
        data.train_val_split(np.zeros((10, 3)), np.zeros(9), seed=0, count=2)


# ----------------------------------------------------------------------------------------------
# The notes' small data sets


def test_logic_gates_truth_tables():
    x, y = data.logic_gate("AND")
    a, b = x[:, 0].astype(bool), x[:, 1].astype(bool)
    assert x.shape == (4, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(y, a & b)
    np.testing.assert_array_equal(data.logic_gate("or")[1], a | b)
    np.testing.assert_array_equal(data.logic_gate("xor")[1], a ^ b)
    xn, yn = data.logic_gate("not")
    np.testing.assert_array_equal(yn, 1 - xn[:, 0])
    x[0, 0] = 9  # a copy: the table itself is unchanged
    assert data.logic_gate("and")[0][0, 0] == 0
    with pytest.raises(ValueError, match=r"unknown logic gate 'nor'; valid gates are and, or, xor, not"):
        data.logic_gate("nor")


def test_u_shaped_curve():
    x, y = data.u_shaped(301, key=jax.random.key(0), noise=0.0)
    assert x.shape == y.shape == (301, 1) and x.dtype == y.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], np.linspace(-1, 1, 301), atol=1e-6)
    np.testing.assert_allclose(y, x**2 - 0.5, atol=1e-6)
    _, noisy = data.u_shaped(301, key=jax.random.key(0), noise=0.05)
    _, again = data.u_shaped(301, key=jax.random.key(0), noise=0.05)
    _, other = data.u_shaped(301, key=jax.random.key(1), noise=0.05)
    np.testing.assert_array_equal(noisy, again)
    assert not np.array_equal(noisy, other)
    residual = noisy - y
    assert 0.04 < residual.std() < 0.06 and abs(residual.mean()) < 0.01
    with pytest.raises(ValueError, match=r"n = 0 samples"):
        data.u_shaped(0, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"noise = -1"):
        data.u_shaped(3, key=jax.random.key(0), noise=-1)


def test_quadratic_is_five_x_squared():
    x, y = data.quadratic(500, key=jax.random.key(2))
    assert x.shape == y.shape == (500, 1)
    np.testing.assert_allclose(y, 5 * x.astype(np.float64) ** 2, rtol=1e-6)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    x2, _ = data.quadratic(500, key=jax.random.key(2), low=2.0, high=3.0)
    assert x2.min() >= 2 and x2.max() <= 3
    with pytest.raises(ValueError, match=r"low = 1 and high = 1; the x range needs low < high"):
        data.quadratic(3, key=jax.random.key(0), low=1, high=1)


@pytest.mark.parametrize(
    "name", ["fnnjax.data", "fnnjax._idx", "fnnjax._datasets", "fnnjax._split", "fnnjax._toy_data"]
)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
