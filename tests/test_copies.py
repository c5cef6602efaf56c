"""Deliberate duplication, the diffusers way: a function marked
`# Copied from baselines.MODULE.CLASS.METHOD [with A->B, C->D]` must equal its original
(after those renames), so that a fix to one is a fix to both."""

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"^\s*# Copied from (baselines(?:\.\w+)+)(?: with (.+))?$")


def marked_copies() -> list[tuple[Path, int, str, str]]:
    return [c for path in sorted((ROOT / "baselines").glob("*.py")) for c in copies_in(path)]


def copies_in(path: Path) -> list[tuple[Path, int, str, str]]:
    """(file, line of the def, its source, the original's source after the renames)."""
    text = path.read_text()
    lines = text.splitlines()
    defs = {
        (node.decorator_list[0] if node.decorator_list else node).lineno: node
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    found = []
    for i, line in enumerate(lines):
        m = MARK.match(line)
        if not m:
            continue
        start = i + 2  # the def (or its first decorator) right below the comment
        copy = "\n".join(lines[start - 1 : defs[start].end_lineno])
        module, qualname = m.group(1).rsplit(".", 2)[0], m.group(1).split(".", 2)[2]
        original = importlib.import_module(module)
        for attr in qualname.split("."):
            original = getattr(original, attr)
        source = inspect.getsource(original)
        for rename in (m.group(2) or "").split(","):
            if rename.strip():
                old, new = (part.strip() for part in rename.split("->"))
                source = source.replace(old, new)
        found.append((path, start, textwrap.dedent(copy), textwrap.dedent(source)))
    return found


def test_gans_share_their_scaffolding_as_marked_copies():
    copies = [c for c in marked_copies() if c[0].name == "wgan_gp.py"]
    assert len(copies) >= 7


@pytest.mark.parametrize("copy", marked_copies(), ids=lambda c: f"{c[0].name}:{c[1]}")
def test_marked_copy_equals_its_original(copy):
    path, line, text, original = copy
    assert text.strip() == original.strip(), f"{path.name}:{line} drifted from its original"


def test_a_drifted_copy_is_caught(tmp_path):
    """The check itself: one changed character in a copy and it no longer matches."""
    source = (ROOT / "baselines" / "wgan_gp.py").read_text()
    drifted = tmp_path / "wgan_gp.py"
    drifted.write_text(source.replace("value=-1.0)", "value=-0.9)"))
    mismatched = [c for c in copies_in(drifted) if c[2].strip() != c[3].strip()]
    assert [c[2].splitlines()[0].strip() for c in mismatched] == [
        "def _critic(self, x: torch.Tensor) -> torch.Tensor:"
    ]
