"""Write digits_samples.npz and the scores committed beside it (digits_samples_scores.json).

The samples: 300 test-split digits picked with seed 0, plus Gaussian pixel noise (sigma
24, seed 0), rounded and clipped to uint8. The scores use the shipped digits classifier's
features and the scoring protocol (FD and KID against the whole training split, PRDC
against a seeded equal-size training subset with k=3 / k=5), computed by the peer
packages where one takes features: pytorch-fid (FD) and prdc (PRDC); KID by the textbook
unbiased MMD^2 on genbench's seeded subsets. Run from the repository root:

    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/data/make_digits_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from bench.data import load_dataset
from bench.features.classifier import load_classifier
from bench.metrics.kid import kid_subset_indices

HERE = Path(__file__).resolve().parent
N, NOISE, SEED = 300, 24.0, 0


def make_samples(test_x: torch.Tensor) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    pick = np.sort(rng.choice(len(test_x), N, replace=False))
    x = test_x.numpy()[pick].astype(np.float64)
    return np.clip(np.rint(x + rng.normal(0.0, NOISE, x.shape)), 0, 255).astype(np.uint8)


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def main() -> None:
    from prdc import compute_prdc

    data = load_dataset("digits")
    samples = make_samples(data.test.x)
    np.savez_compressed(HERE / "digits_samples.npz", images=samples)
    clf = load_classifier(data, "cpu")
    assert clf.source == "shipped"
    fake = clf.features(torch.from_numpy(samples)).astype(np.float64)
    train = clf.features(data.train.x).astype(np.float64)
    fd = calculate_frechet_distance(
        fake.mean(0), np.cov(fake, rowvar=False), train.mean(0), np.cov(train, rowvar=False)
    )
    idx_a, idx_b = kid_subset_indices(len(fake), len(train), num_subsets=100, subset_size=1000)
    mmds = np.array([unbiased_mmd2(fake[a], train[b]) for a, b in zip(idx_a, idx_b, strict=True)])
    sub = np.sort(np.random.default_rng(0).choice(len(train), N, replace=False))
    real32, fake32 = train[sub].astype(np.float32), fake.astype(np.float32)
    pr, dc = compute_prdc(real32, fake32, 3), compute_prdc(real32, fake32, 5)
    scores = {
        "classifier_sha256": clf.weights_sha256,
        "dataset_content_hash": data.content_hash,
        "fd_classifier_n300_train": float(fd),
        "kid_classifier_n300": float(mmds.mean()),
        "kid_classifier_n300_std": float(mmds.std()),
        "precision_classifier_k3": float(pr["precision"]),
        "recall_classifier_k3": float(pr["recall"]),
        "density_classifier_k5": float(dc["density"]),
        "coverage_classifier_k5": float(dc["coverage"]),
    }
    (HERE / "digits_samples_scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
