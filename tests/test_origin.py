"""Provenance of the user's inputs: file and folder hashes, package versions."""

import hashlib
import os

from bench.origin import files_hash, package_version


def test_files_hash_is_sha256_and_follows_edits(tmp_path):
    f = tmp_path / "c.pt"
    f.write_bytes(b"one")
    assert files_hash(f) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"two!")  # a new size and mtime: read again, not the memo
    os.utime(f, ns=(1, 1))
    assert files_hash(f) == hashlib.sha256(b"two!").hexdigest()


def test_folder_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"x")
    first = files_hash(tmp_path / "a")
    (tmp_path / "a" / "x.png").rename(tmp_path / "a" / "y.png")
    assert files_hash(tmp_path / "a") != first


def test_package_version_names_the_installed_distribution():
    import numpy

    assert package_version(numpy.ndarray) == f"numpy=={numpy.__version__}"

    class Local:  # defined in a test module that no distribution installed
        pass

    assert package_version(Local) == ""
