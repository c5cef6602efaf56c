"""What a study shows: each model's cached samples from a suite's output folder (found
through the samples key its job record holds), or the images of samples files, and the
dataset's real training images; with the class of each image where there is one. On a
translation task, translations against the target's real test images
(bench.study.translation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.cache import Cache
from bench.data import load_dataset
from bench.errors import UserError
from bench.record import JobRecord, open_output_store
from bench.samples import SOURCE_INDICES_KEY, load_samples_file, sample_labels, source_indices
from bench.study.images import encode_pair_png, encode_png
from bench.translation import is_translation


@dataclass(frozen=True)
class Source:
    """A source's uint8 NCHW images and the class of each (int64), None where there are
    no classes: the class a conditional model was asked for, a real image's label. In a
    study with --show-source, `beside` holds the translation source shown beside each."""

    images: torch.Tensor
    labels: np.ndarray | None = None
    beside: torch.Tensor | None = None

    def png(self, i: int, display_px: int) -> bytes:
        """Image i as the page shows it (beside its source, when there is one)."""
        if self.beside is None:
            return encode_png(self.images[i], display_px)
        return encode_pair_png(self.beside[i], self.images[i], display_px)


@dataclass(frozen=True)
class StudyRun:
    label: str
    dataset: str
    run_id: str
    samples_key: str


# real images shown as generated: their error stays near 0.5 unless something gives them away
# (target-sampler: real target images shown as translations)
SANITY = ("copier", "cond-copier", "target-sampler")
# beside their sources, random targets are told apart by the pair; true targets are not
SANITY_BESIDE_SOURCE = ("oracle",)


def study_runs(
    out_dir: Path,
    models: list[str] | None,
    dataset: str | None = None,
    references: str = "one",
    sanity: tuple[str, ...] = SANITY,
) -> list[StudyRun]:
    """One finished job run per model label (its lowest seed's latest) of one dataset: the
    `models` asked for, else every learned model and `references` of the references
    (`one`: the first whose model is in `sanity`, else the first)."""
    db = out_dir / "mlruns" / "mlflow.db"
    if not db.exists():
        raise UserError(f"no MLflow store at {db}; run `genbench run` first or pass --samples")
    records = [r for r in open_output_store(out_dir).records() if r.status == "FINISHED"]
    if not records:
        raise UserError(f"{out_dir} holds no finished job runs; run `genbench run` first")
    datasets = sorted({r.dataset for r in records})
    if dataset is None:
        if len(datasets) > 1:
            names = ", ".join(datasets)
            raise UserError(f"{out_dir} has several datasets ({names}); pass --dataset")
        dataset = datasets[0]
    elif dataset not in datasets:
        raise UserError(f"no finished runs on dataset {dataset!r}; it has: {', '.join(datasets)}")
    records = sorted((r for r in records if r.dataset == dataset), key=lambda r: r.start_time)
    labels = list(dict.fromkeys(r.model for r in records))
    for m in models or []:
        if m not in labels:
            raise UserError(f"unknown model {m!r}; {out_dir} has: {', '.join(labels)}")
    shown = models or shown_labels(records, references, sanity)
    if not shown:
        raise UserError(
            f"{out_dir} holds only references on {dataset}; pass --references one or all, "
            "or --models"
        )
    out = []
    for label in shown:
        mine = [r for r in records if r.model == label]
        lowest = min(r.seed for r in mine)
        record = [r for r in mine if r.seed == lowest][-1]
        if not record.samples_key:
            raise UserError(
                f"model {label!r}: its run predates recorded samples keys; rerun `genbench run`"
            )
        out.append(StudyRun(label, dataset, record.run_id, record.samples_key))
    return out


def shown_labels(
    records: list[JobRecord], references: str, sanity: tuple[str, ...] = SANITY
) -> list[str]:
    """Every learned model's label and, of the references (`one`: a sanity check, else the
    first; `all`; `none`), in the order the runs were made."""
    labels = list(dict.fromkeys(r.model for r in records))
    refs = {r.model: r.model_ref for r in records if r.reference}
    sanity = [m for m, ref in refs.items() if ref in sanity] or list(refs)
    chosen = {"one": sanity[:1], "all": list(refs), "none": []}[references]
    return [m for m in labels if m not in refs or m in chosen]


def study_sources(
    out_dir: Path, runs: list[StudyRun], show_source: bool = False
) -> dict[str, Source]:
    """Model label -> its cached samples, for job runs of a suite's output (study_runs; a
    class-conditional model's are cached with the classes asked for; translations with
    their sources' classes, and with show_source their sources)."""
    from bench.study.translation import translations

    cache = Cache(out_dir / "cache")
    out = {}
    for run in runs:
        samples = cache.load("samples", run.samples_key)
        if samples is None:
            raise UserError(f"model {run.label!r} has no cached samples in {out_dir}/cache")
        if not isinstance(samples, dict):
            samples = {"images": samples, "labels": None}
        data = load_dataset(run.dataset)
        if is_translation(data):
            rows = samples.get(SOURCE_INDICES_KEY)
            rows = None if rows is None else rows.numpy()
            out[run.label] = translations(data, samples["images"], rows, show_source)
        elif samples["labels"] is not None:
            out[run.label] = Source(samples["images"], np.asarray(samples["labels"], np.int64))
        else:
            out[run.label] = Source(samples["images"])
    return out


def file_sources(
    files: list[tuple[str, Path]], dataset: str, show_source: bool = False
) -> dict[str, Source]:
    """Label -> images of each (label, samples file), as names.samples_args gives them; on
    a translation task, translations (of the rows in the file's source_indices)."""
    from bench.study.translation import translations

    data = load_dataset(dataset)
    if data.kind != "images":
        raise UserError(f"dataset {dataset!r} holds points; a study shows images")
    out: dict[str, Source] = {}
    for label, path in files:
        if not path.exists():
            raise UserError(f"samples file {path} not found")
        images = load_samples_file(path, data)
        if is_translation(data):
            rows = source_indices(path, data)
            out[label] = translations(data, images, rows, show_source)
        else:
            out[label] = Source(images, sample_labels(path, data))
    if not out:
        raise UserError("no samples: pass --out DIR (a suite's output) or --samples FILE")
    return out


def real_images(dataset: str, show_source: bool = False) -> Source:
    """The dataset's training images, with their labels where it has classes; of a
    translation task, the target's test images (bench.study.translation.real_targets)."""
    from bench.study.translation import check_show_source, real_targets

    data = load_dataset(dataset)
    check_show_source(data, show_source)
    if is_translation(data):
        return real_targets(data, show_source)
    labels = None if data.num_classes is None else np.asarray(data.train.y, np.int64)
    return Source(data.train.x, labels)
