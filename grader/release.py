"""notebooks/ is nbgrader's release of solutions/: make it, or tell where it is stale."""
import shutil
import tempfile
from pathlib import Path

from . import config
from .nbgrading import add_source


def generate(dest):
    """Release every solution notebook into dest; return the released files."""
    with tempfile.TemporaryDirectory() as root:
        add_source(root)
        released = sorted((Path(root) / "release" / config.ASSIGNMENT).glob("*.ipynb"))
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        names = {p.name for p in released}
        for old in dest.glob("*.ipynb"):
            if old.name not in names:
                old.unlink()
        for nb in released:
            shutil.copy(nb, dest / nb.name)
    return sorted(dest / n for n in names)


def stale(notebooks=config.NOTEBOOKS):
    """Names of the files in notebooks/ that differ from a fresh release (missing or extra too)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(tmp)}
    current = {p.name: p.read_bytes() for p in Path(notebooks).glob("*.ipynb")}
    return sorted(name for name in fresh.keys() | current.keys()
                  if fresh.get(name) != current.get(name))
