"""The notebooks that ship inside the package, found with :mod:`importlib.resources`.

Each notebook exists once, at the top of the source tree where people open it:
``notebooks/dashboard.ipynb`` (and the analysis notebooks) and ``scheduled/*.ipynb``.
pyproject.toml maps the packages ``speedlab.notebooks`` and ``speedlab.scheduled`` onto those
folders, so a wheel (``pip install speedlab``) carries them inside ``speedlab/`` and an editable
install reads them from the source tree: the same call finds them in both.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import ConfigError

__all__ = ["bundled_notebook", "dashboard_notebook", "scheduled_notebook", "scheduled_notebooks"]


def bundled_notebook(package: str, name: str) -> Path:
    """The path of notebook ``name`` (without ``.ipynb``) shipped in ``package``.

    Raises
    ------
    ConfigError
        If the notebook is not installed (an installation that lost its package data).
    """
    try:
        folder = resources.files(package)
    except ModuleNotFoundError:
        folder = None
    path = Path(str(folder / f"{name}.ipynb")) if folder is not None else None
    if path is None or not path.is_file():
        raise ConfigError(f"the notebook {package}/{name}.ipynb is not installed with speedlab: "
                          "reinstall speedlab (`python3 -m pip install --force-reinstall speedlab`)")
    return path


def dashboard_notebook() -> Path:
    """``notebooks/dashboard.ipynb``: the notebook Voilà serves."""
    return bundled_notebook("speedlab.notebooks", "dashboard")


def scheduled_notebook(name: str) -> Path:
    """``scheduled/<name>.ipynb`` (``rollup`` or ``run_due``): a notebook papermill runs."""
    return bundled_notebook("speedlab.scheduled", name)


def scheduled_notebooks() -> list[Path]:
    """Every scheduled notebook, sorted by name."""
    return sorted(Path(str(resources.files("speedlab.scheduled"))).glob("*.ipynb"))
