"""Settings of the qschedule applications (one token, one app)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cronwheel.settings import Settings


def app(id_: int, name: str, token: str) -> dict[str, object]:
    return {"id": id_, "name": name, "token": token}


def test_apps_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONWHEEL_QSCHEDULE_APPS",
                       '[{"id": 163, "name": "qschedule.demo", "token": "IGbpF3fyuEVyzkNK"}]')
    [only] = Settings().qschedule_apps
    assert (only.id, only.name, only.token) == (163, "qschedule.demo", "IGbpF3fyuEVyzkNK")


@pytest.mark.parametrize("apps", [
    [app(1, "a", "token-one"), app(2, "b", "token-one")],
    [app(1, "a", "token-one"), app(2, "a", "token-two")],
    [app(1, "a", "token-one"), app(1, "b", "token-two")],
])
def test_apps_sharing_an_id_a_name_or_a_token_are_refused(apps: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError, match="each qschedule app needs its own"):
        Settings(qschedule_apps=apps)
