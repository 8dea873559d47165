"""Finding and masking personal data in citizens' messages (UU No. 27/2022, PDP).

Pure: text in, spans or masked text out. What is found:

- ``nik``   16-digit population number, also grouped ("3276 0101 0101 0001",
            "32.76.01.010101.0001", "3276/0101/0101/0001"); masked as
            "3276********0001". Without a word such as NIK or KTP before it, a
            16-digit number written in groups must have a NIK's structure
            (province, birth date): "2020 2021 2022 2023" is a list of years.
            A NIK typed with up to three letters for digits (O, o for 0; I, l, i
            for 1) is one too, right after a word such as NIK ("NIK 32760101010100O1").
- ``kk``    16-digit family-card number, told apart from a NIK only by the word
            before it (KK, kartu keluarga); masked like a NIK.
- ``phone`` mobile numbers (08x, 62 8x, +62 8x, 0062 8x, 08 1234 ..., +62 (0) 8x)
            and landlines (021..., (0274) ..., +62 21 ..., +62 (0)21 ...); masked
            keeping the first 4 and the last 2-3 digits ("0812*****890"). Also found inside wa.me and WhatsApp links,
            and written in the ways below ("spelled, spaced or with letters").
- ``email`` also written "nama at gmail dot com", "nama(at)gmail(dot)com",
            "nama @ gmail.com"; masked keeping the first letter and the domain
            ("b***@gmail.com").
- ``bank``  a 10-16 digit number near a bank word (rek, rekening, norek, any
            "bank ...", BRI, BNI, BCA, BSI, BJB, SeaBank, ...) before it, or a bank
            word or "a/n", "a.n." right after it; masked keeping the last 4
            digits ("******7890").
- ``bpjs``  13-digit KIS/BPJS card number starting 000, or an 11-13 digit number
            after a word such as BPJS, KIS, JKN, no. peserta; masked like an account.
- ``npwp``  15-digit tax number, after the word NPWP or written 12.345.678.9-012.345;
            masked like an account.

How people write numbers varies, so the text is first normalised: every kind of
decimal digit (fullwidth, Arabic-Indic, ...) becomes 0-9, zero-width characters
and emoji keycap marks are dropped ("0️⃣8️⃣" reads 08), fullwidth letters and
signs and every dash become their ASCII forms. Detection runs on the normalised text; an offset map points each span
back at the original. Digit groups are joined across the separators people use
(space, dot, dash, brackets, slash, comma, underscore, tab, a line break); a
number may also be glued to a word that names it ("nik3201...", "wa0812...").

Phone numbers spelled out, spaced or with letters for digits are read as digits
before they are checked. A run is made of digit words (nol or kosong, satu, dua,
tiga, empat, lima, enam, tujuh, delapan, sembilan; zero ... nine, any case), digit
groups, and digit groups with letters for digits (l, I, i for 1; O, o for 0; S for
5 and B for 8 only between two digits), joined by spaces, a comma, a dash or a dot:
"nol delapan satu dua ...", "zero eight one two ...", "0812 tiga empat lima ...",
"0 8 1 2 3 4 5 6 7 8 9 0", "08l2 3456 789O". Such a run is a phone number only:

- with digit words, or every digit spaced (six single digits or more), when it
  starts like a mobile number (0 8x, 62 8x) and has a mobile number's length, or
  when a phone word (hp, wa, telp, kontak, hubungi, ...) is the nearest keyword
  before it and it reads as a mobile number (also a bare 8x) or a landline;
- with letters for digits, when it reads as a mobile number (08x, 62 8x, +62 8x)
  of a mobile number's length, starts with a group of 3 or more characters (or the
  country code) and at most a third of its digits are letters, and has no digit
  words. "RT05", "INV-0812AB", "B 1234 XYZ" make no such run.

Once a run holds 10 digits it goes on only across the separator it has used so far
and only in the same writing (words after words, digits after digits), so
"081234567890 satu lagi" stays one number and a word. A group of two digits joins
only as the last group after one of three or more, and no digit word follows a
year, so times and dates ("jam 08.15-16.00 dua kali", "27-11-2025, dua tiga
orang") make no run; ordinary number words are far too few to be a phone ("dua
tiga hari", "satu dua orang"). The whole writing is masked like any phone, as
digits: "no hp nol delapan satu dua ... sembilan" becomes "no hp 0812****789",
"08l2 3456 789O" becomes "0812*****890". No digit word or letter of it stays, the
same digits stay visible as when it is written in digits, and the reader still
sees that a phone number was there. Not read: numbers said in tens and hundreds
("dua belas", "delapan ratus"), digits spaced in pairs ("08 12 34 56 ...", which
is how lists of times look), and a NIK or an account spelled out.

Left alone on purpose: amounts (Rp1.750.000, 200rb), dates, years and lists of
them, short numbers, toll-free and premium numbers (0800..., 0809...), post and
RT/RW numbers, order or tracking numbers glued to other letters (INV-...,
TRX123...), URLs other than a phone number inside them, @mentions and
hashtags (#3276... counts as a NIK only after a word such as NIK). When in doubt between two kinds, a number is still masked: the kinds
only decide how.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable, NamedTuple, TypeVar

NIK, KK, PHONE, EMAIL, BANK, BPJS, NPWP = "nik", "kk", "phone", "email", "bank", "bpjs", "npwp"
KINDS: tuple[str, ...] = (NIK, KK, PHONE, EMAIL, BANK, BPJS, NPWP)


class PiiSpan(NamedTuple):
    """One piece of personal data: its kind and where it is in the text."""

    kind: str
    start: int
    end: int


# -- normalisation ------------------------------------------------------------------

# Also the emoji variation selectors and the keycap mark: an emoji keyboard writes a digit as
# "0\ufe0f\u20e3" (0️⃣), so a number typed with keycaps is the same digits once they are dropped.
_KEYCAP_MARKS = frozenset("\ufe0e\ufe0f\u20e3")
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff") | _KEYCAP_MARKS
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d")
_LINE_BREAKS = frozenset("\u0085\u2028\u2029")


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """The ASCII form of one character when it has an obvious one, "" for an invisible one."""
    if char in _INVISIBLE:
        return ""
    if char in _DASHES:
        return "-"
    if char in _LINE_BREAKS:
        return "\n"
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    if char.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() else char


def normalise(text: str) -> tuple[str, list[int]]:
    """text with digits, dashes, spaces and fullwidth forms folded to ASCII and
    invisible characters dropped, and for each character of the result the index
    of the character of text it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        folded = char if char.isascii() else _fold(char)
        if folded:
            out.append(folded)
            where.append(i)
    return "".join(out), where


# -- patterns -----------------------------------------------------------------------

def _words(pattern: str) -> re.Pattern[str]:
    """A case-insensitive pattern that matches only whole words; digits may touch it ("nik3201")."""
    return re.compile(rf"(?<![A-Za-z])(?:{pattern})(?![A-Za-z])", re.IGNORECASE)


_BANK_NAMES = (
    r"bri|bni|bca|bsi|btn|bjb|btpn|mandiri|cimb|niaga|danamon|permata|muamalat|ocbc|maybank|panin|bukopin"
    r"|jenius|seabank|blu|bpd|brimo|livin"
)
_KK_WORDS = r"(?:no\.?\s*|nomor\s+)?n?kk|kartu\s+keluarga"
_NIK_WORDS = r"(?:no\.?\s*|nomor\s+)?(?:nik|e-?ktp|ktp)|nomor\s+induk(?:\s+kependudukan)?"
_BANK_WORDS = (
    rf"(?:no\.?\s*)?rek(?:ening)?|norek|bank|{_BANK_NAMES}|a\s?[/.]\s?n\.?|an\.|atas\s+nama|virtual\s+account|va"
)
_BPJS_WORDS = r"bpjs(?:\s+kesehatan)?|kis|jkn|kartu\s+indonesia\s+sehat|no(?:mor|\.)?\s*(?:kartu|peserta)"
_PHONE_WORDS = (
    r"(?:no\.?\s*|nomor\s+)?(?:hp|wa|whatsapp|telp?|telepon|tlp|ponsel|handphone)|(?:di|meng?)?hubungi|kontak|sms|call"
)
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (KK, _words(_KK_WORDS)),
    (NIK, _words(_NIK_WORDS)),
    (BPJS, _words(_BPJS_WORDS)),
    (NPWP, _words(r"(?:no\.?\s*|nomor\s+)?npwp")),
    (BANK, _words(_BANK_WORDS)),
    (PHONE, _words(_PHONE_WORDS)),
)
# Words a number may be glued to: "nik3201...", "wa0812...", "BCA1234567890".
_GLUE = re.compile(
    rf"(?:no|nmr|nomor)?(?:nik|ektp|ktp|n?kk|hp|wa|whatsapp|telp?|tlp|rek|rekening|bpjs|kis|jkn|npwp)"
    rf"|no|nmr|nomor|norek|bank|{_BANK_NAMES}",
    re.IGNORECASE,
)
_BANK_AFTER = re.compile(
    rf"^[\s:,.()\[\]\-]{{0,4}}(?:(?:di|ke|pada|bank)\s+)?(?:{_BANK_WORDS})(?![A-Za-z])", re.IGNORECASE)
_LOOKBACK = 100

_LOCAL = r"[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_%+\-])?"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_OPEN, _CLOSE = r"[(\[{<]", r"[)\]}>]"
_AT = rf"(?P<at>\s*@\s*|\s*{_OPEN}\s*at\s*{_CLOSE}\s*|\s+at\s+)"
_DOT = rf"(?:\.| \. |\s*{_OPEN}\s*(?:dot|titik)\s*{_CLOSE}\s*|\s+(?:dot|titik)\s+)"
_EMAIL = re.compile(
    rf"(?<![\w.%+\-@])(?P<local>{_LOCAL}){_AT}(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?P<tld>[A-Za-z]{{2,}}))"
    r"(?![\w\-])",
    re.IGNORECASE,
)
_DOT_WORD = re.compile(rf"{_DOT}", re.IGNORECASE)
_MAIL_PROVIDERS = frozenset(
    "gmail googlemail yahoo ymail rocketmail hotmail outlook live msn icloud me aol proton protonmail "
    "mail zoho gmx yandex".split())
_COMMON_TLDS = frozenset("com net org id co info biz io me edu gov xyz online site".split())
_ID_SECOND_LEVEL = re.compile(r"\.(?:co|go|ac|sch|or|net|web|my|biz|mil|desa|ponpes)\.id$", re.IGNORECASE)

_URL = re.compile(  # with a scheme or www, or a bare domain with a path: wa.me/62..., bit.ly/..., s.id/...
    r"\b(?:https?://|www\.)\S+"
    r"|(?<![\w.\-@])(?:[A-Za-z0-9\-]{1,63}\.){1,4}(?:com|net|org|id|me|ly|co|io|gl|ee|link|info|site|app|gov|edu)/\S*",
    re.IGNORECASE)
_PHONE_IN_URL = re.compile(r"(?<![0-9])(?:\+?62|0062|0)8[1-9][0-9]{7,10}(?![0-9])")
_MONEY = re.compile(r"\b(?:Rp|IDR)\.?\s*[0-9][0-9.,]*(?:\s*(?:rb|ribu|jt|juta|k)\b)?", re.IGNORECASE)

_GROUP = re.compile(r"[0-9]+")
# Between two digit groups of one number: a tight separator, or a loose one
# that people also use (slash, comma, underscore, two spaces, a tab, a line).
_TIGHT = re.compile(r"[ .\-]|\)[ \-]?|[ \-]?\(|\) ?\(")
_LOOSE = re.compile(r"[ \t]*[/,_|:;\-][ \t]*|[ \t]{2,4}|\t|[ \t]*\r?\n[ \t]*")
_NPWP_FORMAT = re.compile(r"^[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]-[0-9]{3}\.[0-9]{3}$")
_TOLL_FREE = re.compile(r"^080[0-9][0-9]{6,7}$")
_LETTERED_ID = re.compile(r"(?<![A-Za-z0-9])[0-9OoIli]{16}(?![A-Za-z0-9])")
_AS_DIGITS = str.maketrans("OoIli", "00111")
# The trunk zero people keep in brackets after the country code: "+62 (0)21 5551234".
_TRUNK = re.compile(r" ?\(0\) ?")
_MOBILE_START = re.compile(r"(?:0|62|0062)8[1-9]")
_AMOUNT = r"[0-9]{1,3}(?:[.,][0-9]{3})+"
_THOUSANDS = re.compile(rf"^{_AMOUNT}(?:\s*[-/]\s*{_AMOUNT})*$")  # 1.750.000, 300.000-600.000

_PROVINCES = frozenset(
    "11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 51 52 53 61 62 63 64 65 71 72 73 74 75 76 81 82 "
    "91 92 93 94 95 96".split())


# Phone numbers spelled out ("nol delapan satu dua ..."), spaced ("0 8 1 2 ...") or with
# letters for digits ("08l2 3456 789O"): one token is a digit word or a group of digits
# and letters that stand for digits (S and B only between two of them).
_DIGIT_WORDS = {
    "nol": "0", "kosong": "0", "satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5", "enam": "6",
    "tujuh": "7", "delapan": "8", "sembilan": "9",
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9",
}
_LETTER_DIGITS = str.maketrans("OoIilSB", "0011158")
_DIGITISH = re.compile(
    r"(?<![A-Za-z0-9@#_])(?:"
    rf"(?P<word>(?i:{'|'.join(_DIGIT_WORDS)}))"
    r"|(?=[0-9OoIilSB]*[0-9])(?P<mixed>[0-9OoIil]+(?:[SB][0-9OoIil]+)*)"
    r")(?![A-Za-z0-9@_])")
# Cheap tests that a text may hold such a token (most hold none): four digits spaced
# apart, a letter touching a digit, a digit word in the lowered text.
_HINT_WORDS = re.compile(rf"(?<![a-z])(?:{'|'.join(_DIGIT_WORDS)})(?![a-z])")
_HINT_DIGIT_LETTER, _HINT_LETTER_DIGIT = re.compile(r"[0-9][OoIilSB]"), re.compile(r"[OoIilSB][0-9]")
_HINT_SPACED = re.compile(r"[0-9][ \t,.\-]{1,3}[0-9][ \t,.\-]{1,3}[0-9][ \t,.\-]{1,3}[0-9]")
_PHONE_START = re.compile(r"08[1-9]|0[2-79]|0062[2-9]|62[2-9]|8[1-9]")  # mobile, landline, a bare 8x
_SPELL_SEP = re.compile(r"[ \t]{1,3}|[ \t]?[,\-][ \t]?|\.")
_HAS_LETTER = re.compile(r"[A-Za-z]")


class _Token(NamedTuple):
    start: int  # in the normalised text
    end: int
    digits: str  # what it reads as
    word: bool  # a digit word ("delapan"), not written with digits
    letters: int  # how many of its digits are written as letters ("08l2": 1)


class _Group(NamedTuple):
    start: int  # in the normalised text
    end: int
    digits: str
    sep: str  # what separates it from the group before in its chain ("" for the first)


# -- public -------------------------------------------------------------------------

def find_pii(text: str) -> list[PiiSpan]:
    """Every piece of personal data in text, in order, without overlaps; the spans
    point at text itself (not at its normalised form)."""
    norm, where = normalise(text)
    spans = _find(norm)
    return [PiiSpan(s.kind, where[s.start], _end(text, where, s.end)) for s in spans]


def has_pii(text: str) -> bool:
    return bool(find_pii(text))


def mask_pii(text: str) -> str:
    """text with every piece of personal data masked; everything else unchanged."""
    norm, where = normalise(text)
    out: list[str] = []
    last = 0
    for span in _find(norm):
        start, end = where[span.start], _end(text, where, span.end)
        out.append(text[last:start])
        out.append(mask_value(span.kind, norm[span.start:span.end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _end(text: str, where: list[int], norm_end: int) -> int:
    """Where a span that ends at norm_end in the normalised text ends in text: after the marks
    that belong to its last character (a keycap digit "0\ufe0f\u20e3" is masked whole)."""
    end = where[norm_end - 1] + 1
    while end < len(text) and text[end] in _KEYCAP_MARKS:
        end += 1
    return end


def mask_value(kind: str, value: str) -> str:
    """The masked form of one value of the given kind."""
    if kind == EMAIL:
        value = normalise(value)[0]
        m = _EMAIL.fullmatch(value.strip())
        if m is None:
            local, _, domain = value.partition("@")
        else:
            local, domain = m["local"], _DOT_WORD.sub(".", m["domain"])
        return f"{local[:1]}***@{domain.strip()}"
    if kind == PHONE:
        readable = _read_digits(value)
    elif kind in (NIK, KK):
        readable = normalise(value)[0].translate(_AS_DIGITS)  # "...00O1" is ...0001
    else:
        readable = normalise(value)[0]
    digits = re.sub(r"[^0-9]", "", readable)
    if kind in (NIK, KK):
        return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]
    if kind == PHONE:
        digits = re.sub(r"^(0062|62)0", r"\1", digits)  # "+62 (0)21 ...": the trunk zero is not dialled
        keep = 3 if len(digits) >= 11 else 2
        plus = "+" if value.lstrip("(").startswith("+") else ""
        return plus + digits[:4] + "*" * (len(digits) - 4 - keep) + digits[-keep:]
    return "*" * (len(digits) - 4) + digits[-4:]


# -- finding ------------------------------------------------------------------------

def _find(norm: str) -> list[PiiSpan]:
    spans = _emails(norm)
    blanked = _blank(norm, spans)
    urls = list(_URL.finditer(blanked))
    for url in urls:
        spans += [PiiSpan(PHONE, url.start() + m.start(), url.start() + m.end())
                  for m in _PHONE_IN_URL.finditer(url.group())]
    blanked = _blank(blanked, [PiiSpan("", m.start(), m.end()) for m in [*urls, *_MONEY.finditer(blanked)]])
    spelled = _spelled_phones(blanked)
    if spelled:
        spans += spelled
        blanked = _blank(blanked, spelled)
    lettered = _lettered_niks(blanked)
    if lettered:
        spans += lettered
        blanked = _blank(blanked, lettered)
    for chain in _chains(blanked):
        spans += _numbers_in_chain(blanked, chain)
    return sorted(spans, key=lambda s: s.start)


def _lettered_niks(text: str) -> list[PiiSpan]:
    """A NIK or KK number typed with a letter or two for digits ("NIK 32760101010100O1"), right
    after the word that names it: one block of 16, at most 3 of them O, o, I, l or i."""
    found = []
    for m in _LETTERED_ID.finditer(text):
        letters = sum(not c.isdigit() for c in m.group())
        if 1 <= letters <= 3 and m.group()[0].isdigit():
            kind = _context(text, m.start(), m.end())
            if kind in (NIK, KK):
                found.append(PiiSpan(kind, m.start(), m.end()))
    return found


def _emails(norm: str) -> list[PiiSpan]:
    return [PiiSpan(EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(norm) if _plausible_email(m)]


def _plausible_email(m: re.Match[str]) -> bool:
    """"budi@gmail.com" always; the written-out forms ("budi at gmail dot com") and a
    space only before the @ (which is how an @mention looks) need a mail provider or
    a common top-level domain."""
    at, domain = m["at"], _DOT_WORD.sub(".", m["domain"]).lower()
    spaced_dots = " " in m["domain"]
    if not spaced_dots and (at == "@" or (at.strip() == "@" and at.startswith(" ") and at.endswith(" "))):
        return True
    provider = domain.split(".")[0] in _MAIL_PROVIDERS
    if at.strip() == "@" and not at.endswith(" "):  # "kasih @kemensos.ri" is a mention
        return provider or bool(_ID_SECOND_LEVEL.search(domain))
    if at.strip().lower() == "at" and "." in m["domain"]:  # "register at example.online" is a web address
        return provider
    return provider or m["tld"].lower() in _COMMON_TLDS


def _blank(text: str, spans: list[PiiSpan]) -> str:
    """Replace spans by NULs so that digits inside e-mails, URLs and amounts are skipped."""
    chars = list(text)
    for span in spans:
        chars[span.start:span.end] = "\0" * (span.end - span.start)
    return "".join(chars)


def _read_digits(value: str) -> str:
    """value normalised, with digit words and letters for digits read as digits
    ("nol delapan 12" -> "0 8 12", "08l2" -> "0812")."""
    norm = normalise(value)[0]
    if not _HAS_LETTER.search(norm):
        return norm
    return _DIGITISH.sub(lambda m: _token(m).digits, norm)


def _token(m: re.Match[str]) -> _Token:
    word = m["word"]
    if word is not None:
        return _Token(m.start(), m.end(), _DIGIT_WORDS[word.lower()], True, 0)
    written = m["mixed"]
    digits = written.translate(_LETTER_DIGITS)
    return _Token(m.start(), m.end(), digits, False, sum(not c.isdigit() for c in written))


def _spelled_phones(text: str) -> list[PiiSpan]:
    """Phone numbers written with digit words, every digit spaced or letters for
    digits (see the module's docstring); the rest is left to the digit chains."""
    if not (_HINT_SPACED.search(text) or _HINT_DIGIT_LETTER.search(text) or _HINT_LETTER_DIGIT.search(text)
            or _HINT_WORDS.search(text.lower())):
        return []
    runs: list[list[_Token]] = []
    count = 0  # digits in the current run
    for m in _DIGITISH.finditer(text):
        tok = _token(m)
        if runs and _joins(text, runs[-1], tok, count):
            runs[-1].append(tok)
            count += len(tok.digits)
        else:
            runs.append([tok])
            count = len(tok.digits)
    found: list[PiiSpan] = []
    for run in runs:
        if not any(t.word or t.letters for t in run) and _singles(run) < 6:
            continue  # digits only, written in groups: the chains read them
        if not (run[0].word or _free_before(text, run[0].start)):
            run = run[1:]  # glued to a word: INV-0812 ...
        if run and not (run[-1].word or _free_after(text, run[-1].end)):
            run = run[:-1]  # ... 789O-AB
        found += _hits(text, run, _spelled_at)
    return found


_T = TypeVar("_T")


def _hits(text: str, seq: list[_T], hit_at: Callable[[str, list[_T], int], tuple[PiiSpan, int] | None],
          ) -> list[PiiSpan]:
    """Each number hit_at finds in seq, left to right: a hit at i (ending at index j) resumes the
    search at j + 1, no hit moves on one."""
    found: list[PiiSpan] = []
    i = 0
    while i < len(seq):
        hit = hit_at(text, seq, i)
        if hit is None:
            i += 1
            continue
        found.append(hit[0])
        i = hit[1] + 1
    return found


def _joins(text: str, run: list[_Token], tok: _Token, count: int) -> bool:
    """Whether tok goes on the run before it (which holds count digits). Times and
    dates are kept out: a group of two digits joins only as the tail of a group of
    three or more ("789O 12") and nothing follows it but after a leading 62
    ("08.15-16.00 dua tiga", "27-11-2025 dua kali"); no digit word follows a year
    ("sejak 2019 dua tiga"). A run of 10 digits goes on only across the separator
    it has used so far and in the same writing ("081234567890 satu lagi",
    "nol delapan ... nol, satu lagi")."""
    prev = run[-1]
    sep = text[prev.end:tok.start]
    if not _SPELL_SEP.fullmatch(sep):
        return False
    if count >= 10 and (tok.word != prev.word or len(run) < 2 or sep != text[run[-2].end:prev.start]):
        return False
    if not prev.word and len(prev.digits) == 2 and not (len(run) == 1 and prev.digits == "62"):
        return False
    if not tok.word and len(tok.digits) == 2 and (prev.word or prev.end - prev.start < 3):
        return False
    if tok.word and not prev.word:
        return not (len(prev.digits) == 4 and "1950" <= prev.digits <= "2049")
    return True


def _singles(tokens: list[_Token]) -> int:
    return sum(1 for t in tokens if not t.word and len(t.digits) == 1)


def _spelled_at(text: str, run: list[_Token], i: int) -> tuple[PiiSpan, int] | None:
    """The longest phone number in run that starts at its i-th token, and the index
    of its last token."""
    first = run[i]
    start = first.start
    plus = start > 0 and text[start - 1] == "+"
    stretches: list[tuple[int, str, bool, int, int]] = []  # last token, digits, words, letters, single digits
    digits, words, letters, singles = "", False, 0, 0
    for j in range(i, len(run)):
        tok = run[j]
        digits += tok.digits
        if len(digits) > 16:
            break
        words, letters = words or tok.word, letters + tok.letters
        singles += not tok.word and len(tok.digits) == 1
        stretches.append((j, digits, words, letters, singles))
    if len(digits) < 9 or not _PHONE_START.match(digits):
        return None  # every stretch from here starts with the same digits
    head = first.end - first.start >= 3 or first.digits in ("62", "0062")
    phone_word: bool | None = None  # whether the nearest keyword before is a phone word; asked once
    for j, digits, words, letters, singles in reversed(stretches):
        if len(digits) < 9:
            break
        if not (words or letters or singles >= 6):
            continue  # written as digit groups: the chains read it
        mobile = bool(_MOBILE_START.match(digits)) and _is_mobile(digits, plus=plus, context=None)
        if letters:
            ok = mobile and head and not words and 3 * letters <= len(digits)
        elif mobile:
            ok = True
        else:
            if phone_word is None:
                phone_word = _keyword_before(text[max(0, start - _LOOKBACK):start]) == PHONE
            ok = (phone_word and not _BANK_AFTER.match(text[run[j].end:run[j].end + 30])  # as _context does
                  and (_is_mobile(digits, plus=plus, context=PHONE) or _is_landline(digits, plus=plus, context=PHONE)))
        if ok and not _TOLL_FREE.match(digits):
            return PiiSpan(PHONE, start - 1 if plus else start, run[j].end), j
    return None


def _chains(text: str) -> list[list[_Group]]:
    """The digit groups of text, joined into chains by the separators between them;
    a group glued to a word that does not name a number (TRX123, 200rb, @budi3276,
    INV-3276) belongs to no chain."""
    chains: list[list[_Group]] = []
    prev: re.Match[str] | None = None
    for m in _GROUP.finditer(text):
        if prev is not None and prev.group() in ("62", "0062") and _TRUNK.fullmatch(text, prev.end(), m.end() + 1):
            continue  # "+62 (0)21 ...": the trunk zero is part of the separator
        if not _free(text, m.start(), m.end()):
            prev = None
            continue
        sep = text[prev.end():m.start()] if prev is not None else ""
        if prev is not None and _TRUNK.fullmatch(sep):
            sep = " "
        if prev is not None and (_TIGHT.fullmatch(sep) or _LOOSE.fullmatch(sep)):
            chains[-1].append(_Group(m.start(), m.end(), m.group(), sep))
        else:
            chains.append([_Group(m.start(), m.end(), m.group(), "")])
        prev = m
    return chains


def _free(text: str, start: int, end: int) -> bool:
    """Whether a digit group stands on its own, or is glued only to a word that names it."""
    return _free_before(text, start) and _free_after(text, end)


def _free_before(text: str, start: int) -> bool:
    before = text[max(0, start - 30):start]
    glued_word = re.search(r"([A-Za-z]+)([\-/#_]?)\Z", before)
    if glued_word:
        word_start = start - len(glued_word.group())
        if word_start > 0 and text[word_start - 1] in "@#_":
            return False
        if not _GLUE.fullmatch(glued_word.group(1)):
            return False
    elif before.endswith("@"):
        return False
    elif before.endswith("#") and _context(text, start, start) is None:  # a hashtag, unless "NIK #3201..."
        return False
    return True


def _free_after(text: str, end: int) -> bool:
    after = text[end:end + 30]
    glued_after = re.match(r"[\-/#_]?([A-Za-z]+)", after)
    if glued_after and not _GLUE.fullmatch(glued_after.group(1)) and not re.match(r"a[/.]n", after, re.I):
        return False
    return not after.startswith("@")


def _numbers_in_chain(text: str, chain: list[_Group]) -> list[PiiSpan]:
    """Split one chain of digit groups into numbers. Dates, amounts and runs of years
    are set aside first; then a NIK written in groups; then, at each group, the longest
    stretch of groups that makes a number of some kind."""
    found: list[PiiSpan] = []
    near_bank = _context(text, chain[0].start, chain[-1].end) == BANK
    for piece in _without_ordinary(chain):
        for rest in _grouped_niks(text, piece, found):
            for stretch in _stretches(rest, near_bank=near_bank):
                found += _hits(text, stretch, _longest_number)
    return found


def _is_year(group: _Group) -> bool:
    return len(group.digits) == 4 and 1950 <= int(group.digits) <= 2049


def _without_ordinary(chain: list[_Group]) -> list[list[_Group]]:
    """The chain without its dates (27-11-2025, 2025/11/27, 27.11.2025), its amounts
    (1.750.000, 300,000) and its runs of years (2020 2021 2022, at the start of the
    chain or three or more long)."""
    drop: set[int] = set()
    k = 0
    while k < len(chain):  # amounts: a maximal run joined by one "." or "," that reads 1.234.567
        run = k + 1
        while run < len(chain) and chain[run].sep in (".", ",") and chain[run].sep == chain[k + 1].sep:
            run += 1
        first, rest = chain[k].digits, chain[k + 1:run]
        alone = k == 0 or chain[k].sep.strip() not in (".", ",", "-")  # not the end of 12.345.678.9-012.345
        if rest and alone and len(first) <= 3 and not first.startswith("0") and all(len(g.digits) == 3 for g in rest):
            drop.update(range(k, run))
        k = run
    for k in range(len(chain) - 2):
        a, b, c = chain[k:k + 3]
        same_sep = b.sep == c.sep and b.sep.strip() in ("-", "/", ".")
        day_first = len(a.digits) <= 2 and len(b.digits) <= 2 and _is_year(c)
        year_first = _is_year(a) and len(b.digits) <= 2 and len(c.digits) <= 2
        if same_sep and (day_first or year_first):
            drop.update((k, k + 1, k + 2))
    k = 0
    while k < len(chain):
        run = k
        while run < len(chain) and _is_year(chain[run]) and (run == k or chain[run].digits > chain[run - 1].digits):
            run += 1  # rising years: 2020 2021 2022
        if run - k >= 3 or (run - k == 2 and k == 0):
            drop.update(range(k, run))
        k = max(run, k + 1)
    return _pieces(chain, drop)


def _pieces(chain: list[_Group], drop: set[int]) -> list[list[_Group]]:
    out: list[list[_Group]] = [[]]
    for k, group in enumerate(chain):
        if k in drop:
            out.append([])
        else:
            out[-1].append(group)
    return [piece for piece in out if piece]


def _grouped_niks(text: str, chain: list[_Group], found: list[PiiSpan]) -> list[list[_Group]]:
    """Take out the NIKs written in groups of 2 or more digits, however spaced
    ("32 76 01 010101 0001"): 16 digits with a NIK's structure, written one way.
    Adds them to found and returns the pieces of the chain left."""
    taken: set[int] = set()
    i = 0
    while i < len(chain):
        digits, j = "", i
        while j < len(chain) and len(digits) < 16 and len(chain[j].digits) >= 2:
            digits += chain[j].digits
            j += 1
        groups = chain[i:j]
        if j - i > 1 and len(digits) == 16 and _nik_shaped(digits) and _consistent(groups):
            context = _context(text, groups[0].start, groups[-1].end)
            found.append(PiiSpan(KK if context == KK else NIK, groups[0].start, groups[-1].end))
            taken.update(range(i, j))
            i = j
        else:
            i += 1
    return _pieces(chain, taken)


def _stretches(chain: list[_Group], *, near_bank: bool) -> list[list[_Group]]:
    """Cut a chain where a space or a loose separator touches a group of fewer than 3
    digits ("0812345678 2 kali", "27/11"): numbers written that way use groups
    of 3 or more, except a country code and area code ("+62 812...", "+62 21 ...") and the
    last two digits of a mobile number written in groups ("0812 3456 78").
    Right after a bank word, account numbers are written freely: only a loose separator cuts."""
    out = [[chain[0]]]
    head, grouped = chain[0].digits, chain[0].digits in ("62", "0062") or len(chain[0].digits) >= 3
    for cur in chain[1:]:
        stretch = out[-1]
        prev = stretch[-1]
        tight = bool(_TIGHT.fullmatch(cur.sep))
        spaced = " " in cur.sep or not tight
        # head: the stretch's first digits (enough to tell a country or mobile prefix); grouped:
        # every group so far (but a country code) has 3 digits or more
        country = head in ("62", "0062") or (head[:2] == "62" and len(head) == 4 and len(stretch) == 2)
        phone_tail = len(stretch) >= 2 and len(cur.digits) == 2 and grouped and bool(_MOBILE_START.match(head))
        free = near_bank and tight and max(len(prev.digits), len(cur.digits)) >= 3
        # "08 1234 567 890": the mobile prefix written as a group of its own, like a country code
        prefix = len(stretch) == 1 and head == "08" and len(cur.digits) >= 3 and cur.digits[0] != "0"
        mobile = tight and _mobile_in_groups(stretch, cur)
        if spaced and not (country or phone_tail or free or prefix or mobile) and min(len(prev.digits), len(cur.digits)) < 3:
            out.append([cur])
            head, grouped = cur.digits, cur.digits in ("62", "0062") or len(cur.digits) >= 3
        else:
            stretch.append(cur)
            head, grouped = (head + cur.digits)[:8], (grouped or prefix) and len(cur.digits) >= 3
    return out


def _mobile_in_groups(stretch: list[_Group], cur: _Group) -> bool:
    """Whether `cur` continues a mobile number written in groups of any size ("0812 34 56 78 90",
    "0812 345 67 890", "0812 3 4567 890"): the number starts with a group of 3 to 5 digits (or a
    country code) and a mobile prefix, and stays within a mobile number's length; a single digit
    joins only a number still too short to be one, so "0812 3456 7890 2 kali" keeps its count.
    A lone "08" followed by pairs is a list of hours ("jam 08 10 12 14"), not a number."""
    digits = "".join(g.digits for g in stretch)
    longest = 13 if digits.startswith("0") else 14
    if digits.startswith("00"):
        longest = 15
    first = stretch[0].digits
    return ((3 <= len(first) <= 5 or first in ("62", "0062")) and bool(_MOBILE_START.match(digits + cur.digits))
            and len(digits) + len(cur.digits) <= longest and (len(cur.digits) >= 2 or len(digits) < 10))


def _longest_number(text: str, groups: list[_Group], i: int) -> tuple[PiiSpan, int] | None:
    ends, digits = [], 0
    for j in range(i, len(groups)):  # a number has at most 16 digits: never look further
        digits += len(groups[j].digits)
        if digits > 16:
            break
        ends.append(j)
    for j in reversed(ends):
        start, end = groups[i].start, groups[j].end
        kind = _kind(text, groups[i:j + 1])
        if kind:
            if kind == PHONE and start > 0 and text[start - 1] == "+":
                start -= 1
            if start > 0 and text[start - 1] == "(" and ")" in text[start:end]:
                start -= 1  # "(021) 5551234" and "(+62) 812 ..." are masked whole
            return PiiSpan(kind, start, end), j
    return None


def _kind(text: str, groups: list[_Group]) -> str | None:
    start, end = groups[0].start, groups[-1].end
    digits = "".join(g.digits for g in groups)
    if len(digits) < 9:  # shorter than any landline, phone, account, card or NIK
        return None
    value = text[start:end]
    context = _context(text, start, end)
    plus = start > 0 and text[start - 1] == "+"
    amount = bool(_THOUSANDS.match(value))
    if _TOLL_FREE.match(digits):
        return None  # 0800 (toll-free) and 0809 (premium) numbers belong to organisations
    if len(digits) == 16 and context in (KK, NIK):
        return context
    if 10 <= len(digits) <= 16 and context == BANK and not amount and all(_TIGHT.fullmatch(g.sep) for g in groups[1:]):
        return BANK  # written with spaces, dots or dashes: "No. SK 460/1234/2025" is not an account
    if len(digits) == 15 and (context == NPWP or _NPWP_FORMAT.match(value)):
        return NPWP
    if (len(digits) == 13 and digits.startswith("000")) or (11 <= len(digits) <= 13 and context == BPJS):
        return BPJS
    if len(digits) == 16 and not amount and (_nik_shaped(digits) or (len(groups) == 1 and digits[0] != "0")):
        return NIK  # a NIK's structure, or one block of 16 digits (a year list is not: "2020 2021 2022 2023")
    if _is_mobile(digits, plus=plus, context=context):
        return PHONE
    if _is_landline(digits, plus=plus, context=context) and (_consistent(groups) or context == PHONE):
        return PHONE
    return None


def _consistent(groups: list[_Group]) -> bool:
    """Written one way: tight separators only, or the same loose separator throughout."""
    seps = [g.sep for g in groups[1:]]
    return all(_TIGHT.fullmatch(s) for s in seps) or len(set(seps)) == 1


def _nik_shaped(digits: str) -> bool:
    """A NIK: province, regency, district, birth date (day + 40 for women), month, year, serial."""
    day, month = int(digits[6:8]), int(digits[8:10])
    return (digits[:2] in _PROVINCES and digits[2:4] != "00" and digits[4:6] != "00"
            and (1 <= day <= 31 or 41 <= day <= 71) and 1 <= month <= 12 and digits[12:] != "0000")


def _is_mobile(digits: str, *, plus: bool, context: str | None) -> bool:
    """08x (not 0800/0809 toll-free and premium numbers), 62 8x, 0062 8x; a bare 8x after a phone word."""
    if re.match(r"08[1-9]", digits) and not plus:
        return 10 <= len(digits) <= 13
    if re.match(r"628[1-9]", digits):
        return 11 <= len(digits) <= 14
    if re.match(r"00628[1-9]", digits) and not plus:
        return 13 <= len(digits) <= 16
    return context == PHONE and bool(re.match(r"8[1-9]", digits)) and 9 <= len(digits) <= 12


def _is_landline(digits: str, *, plus: bool, context: str | None) -> bool:
    """0 + area code (2x-7x, 9x) + subscriber: 9-11 digits; with 62, after a + or a phone word."""
    if re.match(r"0[2-79]", digits) and not plus:
        return 9 <= len(digits) <= 11
    if re.match(r"62[2-79]", digits) and (plus or context == PHONE):
        return 10 <= len(digits) <= 12
    if re.match(r"0062[2-79]", digits):
        return 12 <= len(digits) <= 14
    return False


def _context(text: str, start: int, end: int) -> str | None:
    """Bank when a bank word or "a/n" follows the number, else the kind named by the
    nearest keyword before it."""
    if _BANK_AFTER.match(text[end:end + 30]):
        return BANK
    return _keyword_before(text[max(0, start - _LOOKBACK):start])


@lru_cache(maxsize=1024)  # asked again for each stretch that starts at the same group
def _keyword_before(before: str) -> str | None:
    best: tuple[int, str] | None = None
    for kind, pattern in _KEYWORDS:
        for m in pattern.finditer(before):
            if best is None or m.end() > best[0]:
                best = (m.end(), kind)
    return best[1] if best is not None else None
