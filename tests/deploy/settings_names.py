"""Names the deployment files use that the settings object does not have yet, each decided on another
branch. A test fails when one of them lands in `Settings` (then drop it here) and when a deployment
file uses any other name that `Settings` lacks."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from shopstream.config import Settings

#: variable -> what it is and where it comes from. Rename here and in the one template/compose place.
PENDING_SETTINGS: dict[str, str] = {
}

#: processors the chart and compose run that `shopstream worker` does not offer yet.
PENDING_PROCESSORS: dict[str, str] = {
}

#: processors `shopstream worker` offers that the chart and compose do not run yet, with the reason.
UNDEPLOYED_PROCESSORS: dict[str, str] = {
}


HELPERS = Path(__file__).resolve().parents[2] / "helm" / "shopstream" / "templates" / "_helpers.tpl"


def chart_env_name(define: str) -> str:
    """A variable name the chart keeps in one `define` of _helpers.tpl (e.g. `adminPort`)."""
    m = re.search(r'define "shopstream\.env\.' + define + r'" -\}\}([A-Z0-9_]+)\{\{', HELPERS.read_text())
    assert m, f"_helpers.tpl defines no shopstream.env.{define}"
    return m.group(1)


def settings_env_names() -> set[str]:
    """Every environment variable the settings object reads."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices), field
        names.update(str(choice) for choice in alias.choices)
    return names


def required_env_names() -> set[str]:
    """Variables of the settings fields that have no default."""
    out: set[str] = set()
    for field in Settings.model_fields.values():
        if field.is_required():
            alias = field.validation_alias
            assert isinstance(alias, AliasChoices)
            out.add(str(alias.choices[0]))
    return out


def worker_processors() -> set[str]:
    """The processors `shopstream worker` accepts and the chart and compose deploy."""
    from shopstream.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    worker = sub.choices["worker"]  # type: ignore[index]
    action = next(a for a in worker._actions if a.dest == "processor")
    return set(action.choices or ()) - set(UNDEPLOYED_PROCESSORS)
