"""The configuration of the golden transcripts, parsed from tests/data/runtime/haproxy.cfg
(the very file HAProxy ran when the answers were recorded)."""

from __future__ import annotations

from lbcore.config import parse_text
from lbcore.config.model import Config
from tests.integration.runtime.golden import CONFIG_TEMPLATE, render_config


def fixed_config(directory: str = "/tmp", port_www: int = 18080, port_db: int = 18100) -> Config:
    return parse_text(render_config(directory, port_www, port_db), str(CONFIG_TEMPLATE))
