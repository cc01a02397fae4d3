"""How each instruction's text after the keyword is split into arguments.

These follow Docker's parser exactly (its dump format depends on them): a shell-form
command is one string, COPY/ADD/VOLUME in shell form split on whitespace without regard
to quotes, ARG/ENV/LABEL split into words that keep their quotes (quotes are removed
later, by variable expansion).
"""

from __future__ import annotations

import json
import re

from dockling.errors import InvalidParameter

# Docker's whitespace for splitting arguments: not newlines.
WHITESPACE = re.compile(r"[\t\v\f\r ]+")

# The arguments of one node: (args, is_json).
Parsed = tuple[tuple[str, ...], bool]


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escape characters in the words."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    quote = ""
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            i += 1
            continue
        if ch in "'\"":
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def extract_flags(text: str) -> tuple[str, list[str]]:
    """Split the leading `--flag[=value]` words off `text`: (rest, flags).

    Quotes in a flag word are removed and backslash escapes the next character; a bare
    `--` ends the flags.
    """
    flags: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return "", flags
        if not text.startswith("--", i):
            return text[i:], flags
        word: list[str] = []
        quote = ""
        blank_ok = False
        while i < n:
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote, blank_ok = ch, True
                i += 1
                continue
            if ch == "\\":
                if i + 1 == n:
                    i += 1
                    continue
                i += 1
                ch = text[i]
            word.append(ch)
            i += 1
        flag = "".join(word)
        if flag == "--":
            return text[i:].lstrip(), flags
        if blank_ok or flag:
            flags.append(flag)


def parse_json(rest: str) -> tuple[str, ...] | None:
    """The elements of a JSON string array, or None when `rest` is not a JSON array.

    Raises InvalidParameter for a JSON array with non-string elements, as Docker does.
    """
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise InvalidParameter(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return tuple(value)


def _reject_constant(name: str) -> object:
    # Go's JSON has no NaN or Infinity: such text is not JSON, so it is shell form.
    raise ValueError(name)


def parse_maybe_json(rest: str, escape: str) -> Parsed:
    """RUN, CMD, ENTRYPOINT, SHELL: JSON array, else the whole text as one argument."""
    if rest == "":
        return (), False
    elements = parse_json(rest)
    if elements is not None:
        return elements, True
    return (rest,), False


def parse_maybe_json_to_list(rest: str, escape: str) -> Parsed:
    """COPY, ADD, VOLUME: JSON array, else whitespace-separated words (quotes kept)."""
    elements = parse_json(rest)
    if elements is not None:
        return elements, True
    return parse_whitespace_delimited(rest, escape)


def parse_whitespace_delimited(rest: str, escape: str) -> Parsed:
    """FROM, EXPOSE: split on whitespace only."""
    if rest == "":
        return (), False
    return tuple(WHITESPACE.split(rest)), False


def parse_string(rest: str, escape: str) -> Parsed:
    """MAINTAINER, USER, WORKDIR, STOPSIGNAL: the text as one argument."""
    if rest == "":
        return (), False
    return (rest,), False


def parse_name_or_name_val(rest: str, escape: str) -> Parsed:
    """ARG: the words, each `name` or `name=value` with its quotes."""
    return tuple(parse_words(rest, escape)), False


def parse_name_val(rest: str, escape: str, keyword: str) -> Parsed:
    """ENV and LABEL: (key, value, separator) triples; legacy `KEY name value` has "" as sep."""
    words = parse_words(rest, escape)
    if not words:
        return (), False
    if "=" not in words[0]:
        parts = WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidParameter(f"{keyword} must have two arguments")
        return (parts[0], parts[1], ""), False
    args: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidParameter(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        key, value = word.split("=", 1)
        args += [key, value, "="]
    return tuple(args), False


def parse_health_config(rest: str, escape: str) -> Parsed:
    """HEALTHCHECK: the type word (`CMD`, `NONE`), then the command as RUN's."""
    match = re.match(r"(\S*)\s*", rest)
    kind = match.group(1) if match else ""
    if not kind:
        return (), False
    command, is_json = parse_maybe_json(rest[match.end() if match else 0 :], escape)
    return (kind, *command), is_json


def go_quote(text: str) -> str:
    """Go's strconv.Quote: a double-quoted string with Go's escapes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            # a byte that was not UTF-8 (decoded with surrogateescape): Go prints \xNN
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
