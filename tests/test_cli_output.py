"""What the commands print: help where boolean options take no value."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app


def commands() -> dict:
    return typer.main.get_command(app).commands


@pytest.mark.parametrize("name", [None, *sorted(commands())])
def test_help_shows_no_bool_metavar(name):
    res = CliRunner().invoke(app, [name, "--help"] if name else ["--help"])
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.output and "BOOLEAN" not in res.output


def test_every_boolean_option_is_a_flag():
    for name, command in commands().items():
        for param in command.params:
            if param.type_descriptor.annotation is bool:
                assert param.is_flag, (name, param.name)  # --json, never --json <bool>
