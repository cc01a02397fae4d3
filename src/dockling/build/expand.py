"""Shell-style variable substitution as Docker's Dockerfile lexer does it.

Supported: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
`${VAR:?message}`, `${VAR?message}`, `${VAR#glob}`, `${VAR##glob}`, `${VAR%glob}`,
`${VAR%%glob}`; single quotes keep text literal; inside double quotes the escape
character escapes only `"`, `$` and itself; outside quotes it escapes any character.
Unset variables expand to "" (or stay as written with `skip_unset`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockling.errors import InvalidParameter

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _Words:
    """Splits the expanded text into words on unquoted whitespace (Docker's rules)."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and "".join(self.word):
                self.words.append("".join(self.word))
                self.word = []
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word.append(ch)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word.append(text)
        self.in_word = True

    def result(self) -> list[str]:
        if self.word and "".join(self.word):
            self.words.append("".join(self.word))
            self.word = []
            self.in_word = False
        return self.words


class ShellLex:
    """A Dockerfile word lexer for one escape character (backslash or backtick)."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """`word` with quotes removed and variables expanded, whitespace kept.

        Raises InvalidParameter for unbalanced quotes, bad substitutions and `${X:?msg}`.
        """
        return _Run(self, word, env).process()[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """`word` expanded then split on unquoted whitespace (EXPOSE uses this)."""
        return _Run(self, word, env).process()[1]

    def process_word_with_matches(
        self, word: str, env: Mapping[str, str]
    ) -> tuple[str, frozenset[str]]:
        """As process_word, plus the names of the variables that were referenced and set."""
        run = _Run(self, word, env)
        return run.process()[0], frozenset(run.matched)


class _Run:
    """One expansion: a cursor over the text."""

    def __init__(self, lex: ShellLex, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.env = env
        self.pos = 0
        self.matched: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def process(self) -> tuple[str, list[str]]:
        try:
            return self.stop_on("")
        except InvalidParameter as exc:
            raise InvalidParameter(f'failed to process "{self.text}": {exc.message}') from None

    def stop_on(self, stop: str, *, raw_escapes: bool = False) -> tuple[str, list[str]]:
        """Process up to `stop` (consumed); `raw_escapes` keeps escape characters in the
        result, for a pattern that gives them a meaning of its own."""
        result: list[str] = []
        words = _Words()
        escape = self.lex.escape
        raw_escapes = raw_escapes or self.lex.raw_escapes
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch in "'\"$":
                if ch == "'":
                    piece = self.single_quote()
                elif ch == '"':
                    piece = self.double_quote()
                else:
                    piece = self.dollar()
                result.append(piece)
                if ch == "$":
                    words.add_string(piece)
                else:
                    words.add_raw_string(piece)
                continue
            ch = self.next()
            if ch == escape:
                if raw_escapes:
                    words.add_raw_char(ch)
                    result.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.add_raw_char(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise InvalidParameter(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        result: list[str] = []
        quote = self.next()
        if self.lex.raw_quotes:
            result.append(quote)
        while True:
            ch = self.next()
            if not ch:
                raise InvalidParameter(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lex.raw_quotes:
                    result.append(ch)
                return "".join(result)
            result.append(ch)

    def double_quote(self) -> str:
        result: list[str] = []
        quote = self.next()
        if self.lex.raw_quotes:
            result.append(quote)
        while True:
            ch = self.peek()
            if not ch:
                raise InvalidParameter(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.lex.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lex.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.lex.escape):
                    if self.lex.raw_escapes:
                        result.append(ch)
                    ch = self.next()
            result.append(ch)

    def name(self) -> str:
        first = self.peek()
        if first.isdigit():
            digits = []
            while self.peek().isdigit():
                digits.append(self.next())
            return "".join(digits)
        if first and first in _SPECIAL_PARAMS:
            return self.next()
        chars = []
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            chars.append(self.next())
        return "".join(chars)

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is not None:
            self.matched.add(name)
        return value

    def dollar(self) -> str:
        self.next()  # the "$"
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.lex.skip_unset else ""
            return value
        self.next()  # the "{"
        first = self.peek()
        if not first:
            raise InvalidParameter("syntax error: missing '}'")
        if first in "{}:":
            raise InvalidParameter("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.lex.skip_unset else ""
            return value
        if ch == ":":
            modifier = self.next()
            word = self.operand()
            value = self.lookup(name)
            if value is None and self.lex.skip_unset:
                return "${" + name + ":" + modifier + word + "}"
            text = value or ""
            if modifier == "-":
                return word if text == "" else text
            if modifier == "+":
                return word if text != "" else ""
            if modifier == "?":
                if value is None:
                    raise InvalidParameter(f"{name}: {word or 'is not allowed to be unset'}")
                if text == "":
                    raise InvalidParameter(f"{name}: {word or 'is not allowed to be empty'}")
                return text
            raise InvalidParameter(f"unsupported modifier ({modifier}) in substitution")
        if ch in "-+?":
            word = self.operand()
            value = self.lookup(name)
            if value is None and self.lex.skip_unset:
                return "${" + name + ch + word + "}"
            if ch == "-":
                return word if value is None else value
            if ch == "+":
                return "" if value is None else word
            if value is None:
                raise InvalidParameter(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch in "#%":
            longest = self.peek() == ch
            if longest:
                self.next()
            pattern = self.operand(raw_escapes=True)
            value = self.lookup(name)
            if value is None and self.lex.skip_unset:
                return "${" + name + ch * (1 + longest) + pattern + "}"
            return _trim(value or "", pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            # ${name/pattern/replacement}: the first (longest) match; ${name//...}: all.
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern = self.stop_on("/", raw_escapes=True)[0]
            except InvalidParameter:
                if not self.peek():
                    raise InvalidParameter("syntax error: missing '/' in ${}") from None
                raise
            replacement = self.operand(raw_escapes=True)
            value = self.lookup(name)
            if value is None and self.lex.skip_unset:
                return "${" + name + "/" * (1 + replace_all) + pattern + "/" + replacement + "}"
            regex = re.compile(_glob_regex(pattern), re.DOTALL)
            return regex.sub(lambda _match: replacement, value or "", count=0 if replace_all else 1)
        if not ch:
            raise InvalidParameter("syntax error: missing '}'")
        raise InvalidParameter(f"unsupported modifier ({ch}) in substitution")

    def operand(self, *, raw_escapes: bool = False) -> str:
        try:
            return self.stop_on("}", raw_escapes=raw_escapes)[0]
        except InvalidParameter:
            if not self.peek():
                raise InvalidParameter("syntax error: missing '}'") from None
            raise


def _trim(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    """`${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`: remove the matching prefix or suffix."""
    regex = re.compile(_glob_regex(pattern), re.DOTALL)
    cuts = range(len(value) + 1)
    order = reversed(cuts) if longest else iter(cuts)
    for n in order:
        if prefix and regex.fullmatch(value[:n]):
            return value[n:]
        if not prefix and regex.fullmatch(value[len(value) - n :]):
            return value[: len(value) - n]
    return value


def _glob_regex(pattern: str) -> str:
    """A shell pattern as a regex: `*` any run (longest), `?` one character, a backslash
    makes `*`, `?` or itself literal and is dropped before `}` and `/`."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            escaped = next(chars, "")
            if escaped not in ("*", "?", "\\", "}", "/"):
                raise InvalidParameter(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'"
                )
            out.append(re.escape(escaped))
        else:
            out.append(re.escape(ch))
    return "".join(out)
