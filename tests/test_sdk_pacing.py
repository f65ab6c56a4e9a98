"""A resume burst is paced to the hub's announced rate: a persona that rejoins many rooms
after a drop is never refused as a flood (no rate_limited error, no 4029)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import make_settings
from sdk_util import connect, event_of, kill

from server.config import Settings

__all__ = ["connect"]  # a fixture, used by name


@pytest.fixture
def hub_settings(tmp_path: Any) -> Settings:
    # persona bucket of 10 at 100/s, closed after 3 refusals: an unpaced resume of 40
    # rooms would be refused ~30 times and closed 4029.
    return make_settings(tmp_path, persona_rate_limit=100.0, persona_rate_burst=10,
                         rate_strikes=3)


async def test_resume_of_many_rooms_is_paced_to_the_hub_rate(connect: Any) -> None:
    persona = await connect("samantha", "persona")
    for i in range(40):
        await persona.join(f"dm:samantha:p{i}")
        if i % 5 == 4:  # stay within the bucket while setting up
            await asyncio.sleep(0.06)
    kill(persona)
    reconnected = await event_of(persona, "reconnected", limit=10.0)
    assert len(reconnected["rooms"]) == 40
    assert all("error" not in info for info in reconnected["rooms"].values())
    assert persona.closed is None
    await persona.ping()  # still connected, still served
