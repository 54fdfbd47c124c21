"""Packaging: every package folder is declared, the import names map onto the folders."""

import pathlib
import tomllib

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
