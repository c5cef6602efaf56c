"""Provenance of the user's inputs: file and folder hashes, package versions."""

import hashlib
import importlib
import json
import os
import sys

from bench import origin
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

    assert package_version(Local) == "unversioned"  # recorded as such, not left blank


def fake_distribution(site, name: str, top: str, files: list[str], editable_dir=None) -> None:
    dist = site / f"{name.replace('-', '_')}-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (dist / "top_level.txt").write_text(top + "\n")
    (dist / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    if editable_dir is not None:
        url = {"url": editable_dir.as_uri(), "dir_info": {"editable": True}}
        (dist / "direct_url.json").write_text(json.dumps(url))


def test_a_plugin_records_the_version_of_the_distribution_that_holds_its_module(
    tmp_path, monkeypatch
):
    """Found by the module's file, not by its top-level name alone: a distribution that
    ships a package of the same name elsewhere (torch-fidelity ships a `tests`) does not
    own a plug-in's module; one whose RECORD lists the file, or an editable install whose
    folder holds it, does."""
    site, src = tmp_path / "site", tmp_path / "src"
    (src / "claimed").mkdir(parents=True)
    (src / "listed").mkdir()
    (src / "edited").mkdir()
    for pkg in ("claimed", "listed", "edited"):
        (src / pkg / "__init__.py").write_text("class Model:\n    pass\n")
    fake_distribution(site, "claims-it", "claimed", ["claimed/__init__.py"])  # not this file
    fake_distribution(site, "lists-it", "listed", ["../src/listed/__init__.py"])
    fake_distribution(site, "edits-it", "edited", [], editable_dir=src / "edited")
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.syspath_prepend(str(site))
    origin._distributions.cache_clear()
    origin._owned.cache_clear()
    try:
        models = {
            pkg: importlib.import_module(pkg).Model for pkg in ("claimed", "listed", "edited")
        }
        assert package_version(models["claimed"]) == "unversioned"
        assert package_version(models["listed"]) == "lists-it==0.3"
        assert package_version(models["edited"]) == "edits-it==0.3"
    finally:
        for pkg in ("claimed", "listed", "edited"):
            sys.modules.pop(pkg, None)
        origin._distributions.cache_clear()
        origin._owned.cache_clear()
