"""README "Extending genbench": a metric, a model, an extractor, a dataset and an executor are
each ONE new file in a plug-in package (a `genbench.plugins` entry point); nothing else is
edited, and each is listed, accepted by a suite and runs."""

import os
import textwrap

from conftest import ROOT, TESTS, run_cli, write_suite

FILES = {
    "sharpness.py": '''\
        import numpy as np

        from bench.metrics import register_metric


        @register_metric("sharpness", columns={"sharpness_": ("higher", 30)}, needs={"images"})
        def score_sharpness(ctx):
            """Mean absolute difference of horizontally neighbouring pixels."""
            x = np.asarray(ctx.fake, dtype=np.float64)
            return {f"sharpness_n{ctx.n}": float(np.abs(np.diff(x, axis=-1)).mean())}
        ''',
    "flat.py": '''\
        import torch

        from bench.models import Spent, register_model


        @register_model("flat")
        class Flat:
            """The training mean image plus noise."""

            def __init__(self, shape):
                self.mean = torch.zeros(tuple(shape))

            def fit(self, data, budget, *, seed, progress):
                self.mean = data.train.x.float().mean(0)
                return Spent(steps=budget.steps)

            def sample(self, n, *, generator, batch_size):
                noise = 20 * torch.randn((n, *self.mean.shape), generator=generator)
                return (self.mean + noise).clamp(0, 255).round().to(torch.uint8)

            def state_dict(self):
                return {"mean": self.mean}

            def load_state_dict(self, sd):
                self.mean = sd["mean"]
        ''',
    "rowmeans.py": '''\
        import numpy as np

        from bench.features import Extractor, register_extractor


        @register_extractor("rowmeans", dim=lambda data: data.shape[1])
        def load_rowmeans(data, device, weights):
            """The mean of each pixel row."""
            return Extractor(lambda x: np.asarray(x, dtype=np.float32).mean(axis=(1, 3)))
        ''',
    "stripes.py": '''\
        import numpy as np

        from bench.data import ImageDataset, Split, register_dataset


        @register_dataset("stripes")
        def stripes(root):
            """8x8 images of random vertical stripes."""
            rng = np.random.default_rng(0)
            x = (rng.random((300, 1, 1, 8)) > 0.5).repeat(8, axis=2).astype(np.uint8) * 255
            return ImageDataset("stripes", "images", Split(x[:240]), Split(x[240:]))
        ''',
    "inline.py": '''\
        from bench.executors import register_executor


        class Inline:
            def __init__(self, note):
                self.note = note

            def run(self, specs):
                from bench.worker import run_job

                print(self.note, flush=True)
                return [run_job(spec) for spec in specs]


        @register_executor("inline", options={"note": ("str", "", "printed before the jobs")})
        def inline(note=""):
            """Jobs in this process, after a note."""
            return Inline(note)
        ''',
}


def test_each_kind_is_one_new_file_in_a_plugin_package(tmp_path):
    site = tmp_path / "site"
    dist = site / "extpkg-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[genbench.plugins]\nextpkg = extpkg\n")
    package = site / "extpkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""A plug-in package: one file per addition."""\n')
    for name, text in FILES.items():
        (package / name).write_text(textwrap.dedent(text))
    env = {"PYTHONPATH": os.pathsep.join(map(str, [site, TESTS, ROOT]))}

    for what, expect in [
        ("metrics", "sharpness: sharpness_* ↑"),
        ("models", "The training mean image plus noise."),
        ("extractors", "rowmeans"),
        ("datasets", "stripes"),
        ("executors", "inline: Jobs in this process, after a note."),
    ]:
        listed = run_cli("list", what, env=env)
        assert listed.returncode == 0 and expect in listed.stdout, (what, listed.stderr)

    suite = write_suite(
        tmp_path,
        "- name: flat\n- name: copier\n",
        name="ext",
        datasets="[stripes]",
        n_samples=40,
        metrics="[fd, sharpness]",
        extra="features: [rowmeans]\nrank_by: [sharpness_n40]\n",
    )
    out = tmp_path / "out"
    res = run_cli(
        "run", str(suite), "--out", str(out), "--executor", "inline",
        "--executor-option", "note=through the inline executor", env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "through the inline executor" in res.stdout
    board = (out / "leaderboard.md").read_text()
    head = next(line for line in board.splitlines() if "| model |" in line)
    assert "sharpness_n40 ↑ (primary)" in head and "fd_rowmeans_n40_train ↓" in head
    assert head.index("fd_rowmeans") < head.index("sharpness_n40")  # its declared order
    flat = next(line for line in board.splitlines() if "| flat |" in line)
    assert flat.startswith("| 1 ") and "**" in flat  # ranked, and the best learned value
