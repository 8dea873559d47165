"""Finding and masking personal data in citizens' messages (UU No. 27/2022, PDP).

Pure: text in, spans or masked text out. What is found:

- ``nik``   16-digit population number, also grouped ("3276 0101 0101 0001",
            "32.76.01.010101.0001"); masked as "3276********0001".
- ``kk``    16-digit family-card number, told apart from a NIK only by the word
            before it (KK, kartu keluarga); masked like a NIK.
- ``phone`` mobile numbers starting 08, 62 or +62, with spaces, dots or dashes;
            masked keeping the first 4 and the last 2-3 digits ("0812*****890").
- ``email`` masked keeping the first letter and the domain ("b***@gmail.com").
- ``bank``  a 10-16 digit number right after a bank word (rek, rekening, norek,
            BRI, BNI, BCA, Mandiri, ...) or followed by "a/n"; masked keeping the
            last 4 digits ("******7890").

Left alone on purpose: amounts (Rp1.750.000, 200rb), dates, years, short
numbers, order or tracking numbers glued to letters (INV-..., TRX123...), URLs
and @mentions. When in doubt between two kinds, a number is still masked: the
kinds only decide how.
"""

from __future__ import annotations

import re
from typing import NamedTuple

NIK, KK, PHONE, EMAIL, BANK = "nik", "kk", "phone", "email", "bank"
KINDS: tuple[str, ...] = (NIK, KK, PHONE, EMAIL, BANK)


class PiiSpan(NamedTuple):
    """One piece of personal data: its kind and where it is in the text."""

    kind: str
    start: int
    end: int


_EMAIL = re.compile(r"(?<![\w.%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_MONEY = re.compile(r"\b(?:Rp|IDR)\.?\s*\d[\d.,]*(?:\s*(?:rb|ribu|jt|juta|k)\b)?", re.IGNORECASE)
# A run of digit groups joined by one separator. Possessive quantifiers (3.11+)
# stop the engine from retrying a shorter run when the lookahead fails.
_SEP = " .\\-\u00a0"
_RUN = re.compile(
    rf"(?<![\w@#/])(?<![A-Za-z0-9_][\-/#])(?<!\d[{_SEP}])"
    rf"\d++(?:[{_SEP}]\d++)*+"
    r"(?![\w@/])(?![\-/#][A-Za-z_])"
)
_GROUP = re.compile(r"\d+")
_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+$")

_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (KK, re.compile(r"\b(?:no\.?\s*|nomor\s+)?(?:kk|nkk)\b|kartu\s+keluarga", re.IGNORECASE)),
    (NIK, re.compile(r"\bnik\b|\be-?ktp\b|\bktp\b|nomor\s+induk", re.IGNORECASE)),
    (BANK, re.compile(
        r"\b(?:no\.?\s*)?rek(?:ening)?\b|\bnorek\b|\b(?:bri|bni|bca|bsi|btn|mandiri|cimb|danamon|permata)\b"
        r"|\ba/n\b|atas\s+nama|virtual\s+account",
        re.IGNORECASE,
    )),
    (PHONE, re.compile(r"\b(?:hp|no\.?\s*hp|wa|whatsapp|telp|telepon|tlp|ponsel)\b", re.IGNORECASE)),
)
_AFTER_BANK = re.compile(r"^\W{0,3}(?:a/n|atas\s+nama)\b", re.IGNORECASE)
_LOOKBACK = 40


def find_pii(text: str) -> list[PiiSpan]:
    """Every piece of personal data in text, in order, without overlaps."""
    spans = [PiiSpan(EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(text)]
    blanked = _blank(text, [*spans, *_spans(_URL, text), *_spans(_MONEY, text)])
    for run in _RUN.finditer(blanked):
        spans.extend(_numbers_in_run(text, run))
    return sorted(spans, key=lambda s: s.start)


def has_pii(text: str) -> bool:
    return bool(find_pii(text))


def mask_pii(text: str) -> str:
    """text with every piece of personal data masked; everything else unchanged."""
    out: list[str] = []
    last = 0
    for span in find_pii(text):
        out.append(text[last:span.start])
        out.append(mask_value(span.kind, text[span.start:span.end]))
        last = span.end
    out.append(text[last:])
    return "".join(out)


def mask_value(kind: str, value: str) -> str:
    """The masked form of one value of the given kind."""
    if kind == EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[0]}***@{domain}"
    digits = re.sub(r"\D", "", value)
    if kind in (NIK, KK):
        return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]
    if kind == PHONE:
        keep = 3 if len(digits) >= 11 else 2
        plus = "+" if value.startswith("+") else ""
        return plus + digits[:4] + "*" * (len(digits) - 4 - keep) + digits[-keep:]
    return "*" * (len(digits) - 4) + digits[-4:]


def _spans(pattern: re.Pattern[str], text: str) -> list[PiiSpan]:
    return [PiiSpan("", m.start(), m.end()) for m in pattern.finditer(text)]


def _blank(text: str, spans: list[PiiSpan]) -> str:
    """Replace spans by NULs so that digits inside e-mails, URLs and amounts are skipped."""
    chars = list(text)
    for span in spans:
        chars[span.start:span.end] = "\0" * (span.end - span.start)
    return "".join(chars)


def _numbers_in_run(text: str, run: re.Match[str]) -> list[PiiSpan]:
    """Split one run of digit groups into numbers: at each group, take the longest
    stretch of groups that makes a NIK/KK, a phone or a bank account."""
    found: list[PiiSpan] = []
    groups = list(_GROUP.finditer(run.group()))
    near_bank = _context(text, run.start(), run.end()) == BANK
    for stretch in [groups] if near_bank else _stretches(groups, run.group()):
        i = 0
        while i < len(stretch):
            hit = _longest_number(text, run.start(), stretch, i)
            if hit is None:
                i += 1
                continue
            found.append(hit[0])
            i = hit[1] + 1
    return found


def _stretches(groups: list[re.Match[str]], run: str) -> list[list[re.Match[str]]]:
    """Cut a run where a space joins a group of fewer than 3 digits ("0812345678 2 kali"):
    numbers written with spaces use groups of 3 or more (except "+62 812...").
    Right after a bank word, account numbers are written freely and the run stays whole."""
    out = [[groups[0]]]
    for prev, cur in zip(groups, groups[1:]):
        spaced = run[prev.end()] in " \u00a0"
        country_code = prev.group() == "62" and cur.group().startswith("8")
        if spaced and not country_code and min(len(prev.group()), len(cur.group())) < 3:
            out.append([cur])
        else:
            out[-1].append(cur)
    return out


def _longest_number(text: str, offset: int, groups: list[re.Match[str]], i: int) -> tuple[PiiSpan, int] | None:
    ends, digits = [], 0
    for j in range(i, len(groups)):  # a number has at most 16 digits: never look further
        digits += len(groups[j].group())
        if digits > 16:
            break
        ends.append(j)
    for j in reversed(ends):
        start, end = offset + groups[i].start(), offset + groups[j].end()
        kind = _kind(text, start, end)
        if kind:
            if kind == PHONE and start > 0 and text[start - 1] == "+":
                start -= 1
            return PiiSpan(kind, start, end), j
    return None


def _kind(text: str, start: int, end: int) -> str | None:
    value = text[start:end]
    digits = re.sub(r"\D", "", value)
    if len(digits) < 10:  # shorter than any phone, account or NIK
        return None
    context = _context(text, start, end)
    if len(digits) == 16 and context == KK:
        return KK
    if 10 <= len(digits) <= 16 and context == BANK and not _THOUSANDS.match(value):
        return BANK
    if len(digits) == 16 and digits[0] != "0" and not _THOUSANDS.match(value):
        return NIK
    if _is_phone(digits, plus=start > 0 and text[start - 1] == "+"):
        return PHONE
    return None


def _is_phone(digits: str, *, plus: bool) -> bool:
    if digits.startswith("08") and not plus:
        return 10 <= len(digits) <= 13
    return digits.startswith("628") and 11 <= len(digits) <= 14


def _context(text: str, start: int, end: int) -> str | None:
    """The kind named by the nearest keyword just before the number, or bank when
    "a/n" follows it."""
    before = text[max(0, start - _LOOKBACK):start]
    best: tuple[int, str] | None = None
    for kind, pattern in _KEYWORDS:
        for m in pattern.finditer(before):
            if best is None or m.end() > best[0]:
                best = (m.end(), kind)
    if best is not None:
        return best[1]
    return BANK if _AFTER_BANK.match(text[end:end + 20]) else None
