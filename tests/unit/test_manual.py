"""docs/configuration.md is generated from the parsers and the settings model: it must be current."""

import pathlib

from ssassoc.worker.manual import render_configuration_reference

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    rendered = render_configuration_reference()
    assert DOC.read_text() == rendered, "regenerate: python -m ssassoc.worker.manual > docs/configuration.md"


def test_reference_covers_every_command_and_setting():
    from ssassoc.worker.config import WorkerSettings

    rendered = render_configuration_reference()
    for command in ("ssassoc demo", "ssassoc ephem build", "ssassoc worker", "ssassoc replay", "ssassoc dev"):
        assert f"## `{command}" in rendered, command
    for name in WorkerSettings.model_fields:
        assert f"`SSASSOC_{name.upper()}`" in rendered
        assert f"`--{name.replace('_', '-')}`" in rendered
