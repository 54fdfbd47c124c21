"""Packaging: every package folder is declared, the import names map onto the folders."""

import pathlib
import subprocess
import sys
import tomllib

import pytest

import ssassoc.core
import ssassoc.worker

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_import_names_map_onto_top_level_folders():
    assert pathlib.Path(ssassoc.core.__file__).resolve().parent == ROOT / "core"
    assert pathlib.Path(ssassoc.worker.__file__).resolve().parent == ROOT / "worker"


def test_every_package_folder_is_declared_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    folders = {name: ROOT / path for name, path in config["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= declared, f"add to [tool.setuptools] packages: {sorted(found - declared)}"


def test_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ssassoc"] == "ssassoc.worker.cli:main"


@pytest.mark.slow
def test_wheel_install_maps_the_same_import_names(tmp_path):
    """Build the wheel, install it into a folder, import from there with the editable hook removed."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next((tmp_path / "dist").glob("ssassoc-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    probe = f"""
import sys
sys.meta_path = [f for f in sys.meta_path if "ditable" not in type(f).__name__ and "ditable" not in str(f)]
sys.path.insert(0, {str(target)!r})
import ssassoc.core, ssassoc.worker, ssassoc.schemas
from ssassoc.worker.cli import build_parser
build_parser()
from ssassoc.core.ephemeris import _query_kernel  # the compiled cone-query kernel ships in the wheel
print(ssassoc.core.__file__, ssassoc.worker.__file__, ssassoc.schemas.__file__, _query_kernel.__file__)
"""
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert all(path.startswith(str(target)) for path in out.stdout.split()), out.stdout
