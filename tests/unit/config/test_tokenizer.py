"""Line splitting, row by row against what HAProxy's parse_line produces."""

import pytest

from lbcore.config.errors import ConfigError
from lbcore.config.tokenizer import MAX_WORDS, tokenize

ENV = {"HOME": "/root", "LIST": "a  b c", "EMPTY": ""}

WORDS = [
    ("", []),
    ("   ", []),
    ("# only a comment", []),
    ("  bind :80", ["bind", ":80"]),
    ("bind\t:80  # trailing comment", ["bind", ":80"]),
    ("option forwardfor#glued comment", ["option", "forwardfor"]),
    ('set-header X "a b"', ["set-header", "X", "a b"]),
    ("set-header X 'a b'", ["set-header", "X", "a b"]),
    ('ab"c d"e', ["abc de"]),
    ("'a \"b\" c'", ['a "b" c']),
    ('"it\'s"', ["it's"]),
    ('"# not a comment"', ["# not a comment"]),
    ("'# not a comment'", ["# not a comment"]),
    (r"a\ b", ["a b"]),
    (r"a\#b", ["a#b"]),
    (r"a\\b", ["a\\b"]),
    (r"\"q\"", ['"q"']),
    (r"\'q\'", ["'q'"]),
    (r'"\t\n\r"', ["\t\n\r"]),
    (r"\x41\x62", ["Ab"]),
    (r"^/api/v[0-9]+\.json$", [r"^/api/v[0-9]+\.json$"]),  # other backslashes stay
    (r"'single \x41 stays'", [r"single \x41 stays"]),
    ('x "$HOME/y"', ["x", "/root/y"]),
    ('x "${HOME}y"', ["x", "/rooty"]),
    ('x "${UNSET-fallback}"', ["x", "fallback"]),
    ('x "${HOME-fallback}"', ["x", "/root"]),
    ("x $HOME", ["x", "$HOME"]),  # variables expand inside double quotes only
    ("x '$HOME'", ["x", "$HOME"]),
    (r'x "\$HOME"', ["x", "$HOME"]),
    ('x "${LIST[*]}" y', ["x", "a", "b", "c", "y"]),
    ('x "${LIST}"', ["x", "a  b c"]),
    ('a "" b', ["a", "", "b"]),
    ('a ""', ["a"]),  # an empty last word is no word, as in HAProxy
    ('a "${EMPTY}"', ["a"]),
    ("line\r\n", ["line"]),
    ("trailing backslash \\", ["trailing", "backslash", "\\"]),
]


@pytest.mark.parametrize(("line", "words"), WORDS, ids=[w[0] or "empty" for w in WORDS])
def test_words(line, words):
    assert tokenize(line, ENV) == words


BAD = [
    ('set-header X "open', "unmatched quote at column 14"),
    ("x 'open", "unmatched quote at column 3"),
    (r"x \xZZ", "invalid hex escape sequence at column 3"),
    (r"x \x4", "invalid hex escape sequence"),
    ('x "${HOME"', "unmatched brace"),
    ('x "${UNSET-default"', "unmatched brace"),
    ('x "$1"', "invalid variable name at column 5"),
    ('x "${.NOPE}"', "unsupported internal variable '.NOPE'"),
    (" ".join(["w"] * (MAX_WORDS + 1)), "too many words on one line (65"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_malformed_lines_are_refused(line, message):
    with pytest.raises(ConfigError) as exc:
        tokenize(line, ENV)
    assert message in str(exc.value)


def test_internal_variables_come_from_the_caller():
    assert tokenize('x "${.FILE}:${.LINE}"', {".FILE": "a.cfg", ".LINE": "7"}) == ["x", "a.cfg:7"]
