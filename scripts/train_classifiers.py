"""Train the classifiers genbench ships for its built-in labelled datasets.

Recipe: bench.features.classifier.RECIPE (AdamW, one-cycle learning rate, random shifts,
label smoothing 0.05) on the dataset's fixed training split, seed 0, on the CPU with one
thread and deterministic algorithms. The same command on the same CPU type and torch
version gives the same bytes; on another CPU the float32 training drifts in the last bits
and ends at other weights, which is why the result ships instead of being retrained.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/train_classifiers.py [NAME ...]
    PYTHONPATH=. python scripts/train_classifiers.py --measure-only   # no training

Writes (to --out, by default bench/features/weights/) NAME.pt, a float32 state dict saved
with torch.save, and records its sha256, test accuracy, the dataset's content hash and the
training machine in classifiers.json there. --measure-only re-measures the written files'
sha256 and test accuracy (through the inference path users get) without training.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
from pathlib import Path

import torch

from bench.data import load_dataset
from bench.features.classifier import (
    ACCURACY_FLOOR,
    RECIPE,
    SHIPPED_DIR,
    SHIPPED_MANIFEST,
    build_net,
    measure_accuracy,
    state_bytes,
    train_classifier,
)

SEED = 0


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(ACCURACY_FLOOR))
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="where to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    manifest_path = args.out / SHIPPED_MANIFEST.name
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in args.names:
        data = load_dataset(name)
        path = args.out / f"{name}.pt"
        if args.measure_only:
            blob = path.read_bytes()
            entry = manifest[name]
        else:
            print(f"training the {name} classifier (seed {SEED})", file=sys.stderr)
            blob = state_bytes(train_classifier(data, torch.device("cpu"), seed=SEED)["state"])
            path.write_bytes(blob)
            entry = {
                "recipe": RECIPE,
                "seed": SEED,
                "torch": torch.__version__,
                "trained_on": cpu_name(),
                "threads": 1,
            }
        net = build_net(data)
        net.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
        accuracy = measure_accuracy(net, data, torch.device("cpu"))
        entry.update(
            file=path.name,
            sha256=hashlib.sha256(blob).hexdigest(),
            bytes=len(blob),
            test_accuracy=accuracy,
            dataset_content_hash=data.content_hash,
        )
        manifest[name] = dict(sorted(entry.items()))
        manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
        verdict = "ok" if accuracy >= ACCURACY_FLOOR[name] else "BELOW THE PROTOCOL'S FLOOR"
        print(f"{name}: test accuracy {accuracy:.4f} ({verdict}), {len(blob)} bytes")


if __name__ == "__main__":
    main()
