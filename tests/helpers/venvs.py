"""Virtual environments and source copies for the install tests (offline: nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.helpers.servers import local_env

ROOT = Path(__file__).resolve().parents[2]


def copy_work_tree(destination: Path) -> None:
    """This tree as it stands (committed or not), without ignored files (venvs, demo stores)."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def borrowing_venv(path: Path) -> tuple[Path, dict[str, str]]:
    """A new virtual environment at ``path`` that sees this environment's packages, offline.

    A ``--system-site-packages`` venv made from inside a venv sees the *base* interpreter's
    packages, not this venv's; instead, a ``.pth`` file in the new venv's site-packages names this
    environment's site-packages (after its own, so what is installed into the new venv wins,
    and this environment's editable-install finders are not activated there). ``JUPYTER_PATH``
    names this environment's ``share/jupyter`` (Voilà's templates, the widget extensions), which
    a venv of its own would hold in its own prefix. Returns the venv's ``bin`` folder and the
    environment to run it with (``pip`` offline: no index, no build isolation).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    print_purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(path / "bin" / "python"), "-c", print_purelib],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site, "_borrowed_site_packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    env = local_env(VIRTUAL_ENV=str(path), PATH=f"{path / 'bin'}{os.pathsep}{os.environ['PATH']}",
                    PYTHONUNBUFFERED="1", PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
                    PIP_DISABLE_PIP_VERSION_CHECK="1",
                    JUPYTER_PATH=os.pathsep.join(filter(None, [str(Path(sys.prefix) / "share" / "jupyter"),
                                                               os.environ.get("JUPYTER_PATH")])))
    for name in ("SPEEDLAB_CONFIG", "SPEEDLAB_STORE", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return path / "bin", env
