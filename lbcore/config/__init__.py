"""The HAProxy configuration dialect: tokenizer, parser, validation, frozen model.

``parse_text(text, filename)`` is the sans-I/O entry point; ``load_config(paths)`` reads
files and parses them. Both raise ``ConfigErrors`` listing every problem with file:line.
"""

from lbcore.config.errors import ConfigError, ConfigErrors
from lbcore.config.load import load_config
from lbcore.config.parser import parse_text, parse_texts

__all__ = ["ConfigError", "ConfigErrors", "load_config", "parse_text", "parse_texts"]
