"""Every default the docs show is the code's: ideacards/README.md's sections block lists the
risk, execution and sim defaults, and they must equal the schema's (and the simulated
venue's own defaults must equal the card's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from adapters.sim import SimConfig
from replay.cards.convert import to_sim_config
from replay.cards.schema import CardModel, ExecutionModel, RiskModel, SimModel

README = Path(__file__).resolve().parents[1] / "ideacards" / "README.md"


def _documented() -> dict:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Sections") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "ideacards/README.md has no yaml block under ## Sections"
    data = yaml.safe_load(block.group(1))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("name", "model"), [("risk", RiskModel), ("execution", ExecutionModel), ("sim", SimModel)]
)
def test_the_documented_defaults_are_the_schemas(name: str, model: type[BaseModel]) -> None:
    shown = _documented()[name]
    assert set(shown) == set(model.model_fields), f"{name}: every field is shown"
    for key, value in shown.items():
        parsed = getattr(model.model_validate({key: value}), key)
        assert parsed == getattr(model(), key), f"{name}.{key}: README shows {value!r}"


def test_the_simulated_venue_defaults_are_the_cards() -> None:
    card = CardModel.model_validate({"symbol": "BTCUSDT", "strategy": {"class": "x.Y"}})
    assert to_sim_config(card) == SimConfig()
