"""Reference statistics (mean and covariance of features) as files that travel.

The format is pytorch-fid's `.npz`: float64 `mu` (d,) and `sigma` (d, d). genbench adds a
protocol record under the extra key `genbench_protocol`, a JSON string stored as a numpy
unicode scalar, so the file loads without pickle; pytorch-fid reads only `mu` and `sigma`
(fid_score.compute_statistics_of_path) and ignores it. Files without the record are read
too: clean-fid's file names say the mode (`{name}_{mode}[_{model}]_{split}_{res}.npz`,
cleanfid/features.py get_reference_statistics); any other is pytorch-fid's `--save-stats`,
whose protocol is Inception with the legacy (bilinear) resize. Statistics of different
protocols are never compared: clean and legacy FID of the same images differ severalfold.

Any extractor plugs in: compute_stats takes its name, features function, dimension,
weights hash and preprocessing mode.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from bench import __version__
from bench.cache import atomic_write_bytes
from bench.errors import UserError
from bench.npz import NpyHeader, has_array, read_any_header, read_header, read_rows

if TYPE_CHECKING:  # torch loads only when statistics are computed: bad files are refused first
    import torch

PROTOCOL_KEY = "genbench_protocol"
FORMAT = "genbench-stats/1"

# Features per statistics file, checked from the header before sigma is read: Inception has
# 2048, sFID's spatial features 2023, DINOv2 ViT-g 1536, CLIP ViT-L 768.
MAX_STATS_DIM = 8192
# Characters of the protocol record (genbench writes a few hundred).
MAX_RECORD_CHARS = 65536

# How far a file's sigma may be from symmetric positive semi-definite, relative to its
# largest entry (symmetry) or eigenvalue (the most negative one); see _check_covariance.
COVARIANCE_RTOL = 1e-6

# clean-fid modes that genbench reproduces, under genbench's names.
_CLEANFID_MODES = {"clean": "clean", "legacy_pytorch": "legacy"}
_CLEANFID_NAME = re.compile(
    r"^.+_(?P<mode>clean|legacy_pytorch|legacy_tensorflow)(?P<model>_clip_vit_b_32)?"
    r"_[^_]+_[^_]+\.npz$"
)

# What a file without a record holds (pytorch-fid's --save-stats): its default Inception pool3
# features after the legacy bilinear resize.
PYTORCH_FID = "pytorch-fid format"
_PYTORCH_FID_PROTOCOL = {"extractor": "inception", "mode": "legacy"}

FeaturesFn = Callable[["torch.Tensor"], np.ndarray]


@dataclass(frozen=True)
class Protocol:
    """How statistics were made; None means not known (a file made by another tool)."""

    dim: int
    extractor: str | None = None
    weights_sha256: str | None = None
    mode: str | None = None  # the extractor's preprocessing, e.g. Inception's clean/legacy
    n: int | None = None
    source: str | None = None  # dataset:split, folder or file the images came from
    source_hash: str | None = None  # the dataset's content hash
    genbench_version: str | None = None  # of the genbench that wrote the file; never compared


@dataclass(frozen=True)
class Stats:
    mu: np.ndarray  # float64 (d,)
    sigma: np.ndarray  # float64 (d, d)
    protocol: Protocol
    origin: str  # "genbench", "clean-fid" or PYTORCH_FID (no record)


def compute_stats(
    images: torch.Tensor,
    *,
    extractor: str,
    features: FeaturesFn,
    dim: int | None,
    weights_sha256: str | None,
    mode: str | None = None,
    source: str | None = None,
    source_hash: str | None = None,
) -> Stats:
    """Mean and covariance of `features(images)` with their protocol record.

    `dim` None means the dimension follows from the images (raw pixels)."""
    from bench.metrics.fd import feature_stats

    if len(images) < 2:
        raise UserError(f"statistics need at least 2 images, got {len(images)} from {source}")
    feats = features(images)
    if dim is not None and feats.shape[1] != dim:
        raise UserError(f"extractor {extractor!r} gave {feats.shape[1]}-d features, not {dim}")
    mu, sigma = feature_stats(feats)
    protocol = Protocol(
        dim=feats.shape[1],
        extractor=extractor,
        weights_sha256=weights_sha256,
        mode=mode,
        n=len(images),
        source=source,
        source_hash=source_hash,
        genbench_version=__version__,
    )
    return Stats(mu, sigma, protocol, "genbench")


def save_stats(path: str | os.PathLike, stats: Stats) -> None:
    """Write `stats` as pytorch-fid's .npz plus the protocol record, atomically."""
    p = stats_path(path)
    if stats.protocol.dim > MAX_STATS_DIM:  # a file genbench writes, genbench reads
        raise UserError(
            f"{p}: {stats.protocol.dim}-d {stats.protocol.extractor} features; statistics files "
            f"hold at most {MAX_STATS_DIM}-d features: use an extractor with fewer"
        )
    record = json.dumps({"format": FORMAT, **asdict(stats.protocol)}, sort_keys=True)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        mu=stats.mu.astype(np.float64),
        sigma=stats.sigma.astype(np.float64),
        **{PROTOCOL_KEY: np.array(record)},
    )
    try:
        atomic_write_bytes(p, buffer.getvalue())
    except OSError as e:
        raise UserError(f"cannot write {p} ({e})") from e


def stats_path(path: str | os.PathLike) -> Path:
    """`path` as a Path, refused unless it ends in .npz (pytorch-fid reads no other)."""
    p = Path(path).expanduser()
    if p.suffix != ".npz":
        raise UserError(f"{p}: a statistics file must end in .npz (pytorch-fid reads no other)")
    return p


def load_stats(path: str | os.PathLike) -> Stats:
    """Statistics from genbench's, pytorch-fid's or clean-fid's .npz; bad files are UserErrors.

    Shapes and dtypes come from the arrays' headers and are checked before any data is read:
    a small file can declare a sigma of many GiB."""
    p = Path(path).expanduser()
    if not (has_array(p, "mu") and has_array(p, "sigma")):
        raise UserError(f"{p} holds no statistics (arrays 'mu' and 'sigma')")
    mu_header, sigma_header = read_header(p, ("mu",)), read_header(p, ("sigma",))
    _check_headers(p, mu_header, sigma_header)
    mu, sigma = _check_arrays(p, *(read_rows(h, h.shape[0]) for h in (mu_header, sigma_header)))
    if has_array(p, PROTOCOL_KEY):
        return Stats(mu, sigma, _parse_record(p, _read_record(p), mu.size), "genbench")
    match = _CLEANFID_NAME.match(p.name.lower())
    if match is None:
        return Stats(mu, sigma, Protocol(dim=mu.size, **_PYTORCH_FID_PROTOCOL), PYTORCH_FID)
    extractor = "clip_vit_b_32" if match["model"] else "inception"
    mode = _CLEANFID_MODES.get(match["mode"], f"clean-fid's {match['mode']}")
    return Stats(mu, sigma, Protocol(dim=mu.size, extractor=extractor, mode=mode), "clean-fid")


def check_compatible(stats: Stats, wanted: Protocol, what: str, against: str | None = None) -> None:
    """Refuse, with one line, statistics whose protocol contradicts `wanted`: the requested
    one, or that of the statistics file `against` names.

    A field unknown on either side (None) contradicts nothing; `wanted.dim` 0 is unknown."""
    made = stats.protocol
    checks = [
        ("extractor", made.extractor, wanted.extractor),
        ("dimension", made.dim, wanted.dim or None),
        ("mode", made.mode, wanted.mode),
        ("weights sha256", made.weights_sha256, wanted.weights_sha256),
    ]
    for name, theirs, ours in checks:
        if theirs is None or ours is None or theirs == ours:
            continue
        if name == "weights sha256":
            theirs, ours = f"{theirs[:12]}...", f"{ours[:12]}..."
        fix = "recompute them with `genbench stats`"
        if name == "mode" and theirs in _CLEANFID_MODES.values():
            fix = f"pass --mode {theirs}, or {fix}"
        if stats.origin == PYTORCH_FID:
            raise UserError(
                f"{what} has no genbench protocol record, so it is pytorch-fid's --save-stats "
                f"(Inception, legacy resize); {against or 'this comparison'} uses {name} {ours}: "
                f"the numbers are not comparable: {fix}"
            )
        ours_are = f"{against} with" if against else "this comparison uses"
        raise UserError(
            f"{what} was made with {name} {theirs}, {ours_are} {ours}; "
            f"the numbers are not comparable: {fix}"
        )


def _check_headers(p: Path, mu: NpyHeader, sigma: NpyHeader) -> None:
    if mu.dtype.kind not in "fiu" or sigma.dtype.kind not in "fiu":
        raise UserError(f"{p}: 'mu' and 'sigma' must hold real numbers")
    d = mu.shape[0]
    if len(mu.shape) != 1 or sigma.shape != (d, d) or d == 0:
        raise UserError(
            f"{p}: 'mu' must be (d,) and 'sigma' (d, d), got {mu.shape} and {sigma.shape}"
        )
    if d > MAX_STATS_DIM:
        raise UserError(
            f"{p}: 'sigma' is {d} x {d}; statistics hold at most {MAX_STATS_DIM}-d features "
            f"(a {MAX_STATS_DIM} x {MAX_STATS_DIM} float64 sigma is 512 MiB)"
        )


def _check_arrays(p: Path, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"{p}: 'mu' or 'sigma' contains NaN or inf values")
    _check_covariance(p, sigma)
    return mu, sigma


def _check_covariance(p: Path, sigma: np.ndarray) -> None:
    """Refuse a sigma that is not symmetric positive semi-definite: the FD of one is any
    number, 0.0 included. Real covariances (np.cov, float64 or rounded to float32, fewer
    images than dimensions) are within 1e-8 of both, relative to the largest entry or
    eigenvalue; COVARIANCE_RTOL leaves a hundredfold margin."""
    largest = float(np.abs(sigma).max())
    asymmetry = float(np.abs(sigma - sigma.T).max())
    if asymmetry > COVARIANCE_RTOL * largest:
        raise UserError(
            f"{p}: 'sigma' is not symmetric: entries differ from their transposes by up to "
            f"{asymmetry:.6g} (its largest entry is {largest:.6g}); a covariance is symmetric: "
            "recompute the statistics"
        )
    with threadpool_limits(1, user_api="blas"):  # see bench.metrics.fd: shared cores
        eigenvalues = np.linalg.eigvalsh(sigma)
    lowest, highest = float(eigenvalues[0]), float(eigenvalues[-1])
    if lowest < -COVARIANCE_RTOL * max(abs(lowest), abs(highest)):
        raise UserError(
            f"{p}: 'sigma' has the eigenvalue {lowest:.6g} (its largest is {highest:.6g}); a "
            "covariance has none below 0: recompute the statistics"
        )


def _read_record(p: Path) -> str:
    header = read_any_header(p, PROTOCOL_KEY)
    chars = header.dtype.itemsize // 4
    if header.dtype.kind != "U" or header.shape != () or chars > MAX_RECORD_CHARS:
        raise UserError(
            f"{p}: its {PROTOCOL_KEY} must be one string of at most {MAX_RECORD_CHARS} "
            f"characters, not {header.dtype} of shape {header.shape}; recompute the statistics "
            "with `genbench stats`"
        )
    try:
        with np.load(p, allow_pickle=False) as npz:
            return str(npz[PROTOCOL_KEY][()])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise UserError(f"{p}: its {PROTOCOL_KEY} cannot be read ({e})") from None


def _parse_record(p: Path, text: str, dim: int) -> Protocol:
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} record")
    except ValueError as e:
        raise UserError(f"{p}: unreadable {PROTOCOL_KEY} record ({e})") from e
    known = {f.name: data.get(f.name) for f in fields(Protocol)}
    for name, value in known.items():
        _check_record_field(p, name, value)
    protocol = Protocol(**known)
    if protocol.dim != dim:
        raise UserError(f"{p}: its record says {protocol.dim}-d features, 'mu' has {dim}")
    return protocol


def _check_record_field(p: Path, name: str, value: object) -> None:
    """A record field must have the type Protocol declares; dim and extractor must be there."""
    required = name in ("dim", "extractor")
    if value is None and not required:
        return
    wanted = int if name in ("dim", "n") else str
    if type(value) is not wanted or (wanted is int and value < 1) or value == "":
        kind = "a positive integer" if wanted is int else "a string"
        if not required:
            kind += " or null"
        got = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise UserError(
            f"{p}: its {PROTOCOL_KEY} record's {name} must be {kind}, got {got}; recompute the "
            "statistics with `genbench stats`"
        )
