"""Benchmark: how often personal numbers written in the ways people write them stay
readable after masking (leaks), and how often ordinary numbers get masked (false masks).

Run: .venv/bin/python -m tests.bench.bench_pii [--per-family N] [--seed S] [--module PATH]

`--module` loads another copy of pii.py (e.g. the one before a change, from
`git show REV:bot/pii.py > /tmp/pii_old.py`) to compare. The families here are
also what tests/test_pii_property.py draws from, through hypothesis.

A leak: the masked text still holds the number's digits in order, once digit
words are read as digits (nol, satu, ... zero, one, ...), letters written for
digits next to a digit as digits (08l2 -> 0812), every other non-digit is
removed and every digit form (fullwidth, Arabic-Indic) is folded to 0-9 (for a
phone, the digits after 0, 62 or 0062; for an e-mail, the name before the @).
A false mask: an ordinary number (date, year, amount, toll-free number, post
code, RT/RW, number words, plates, order codes) is no longer in the text as
written. The last line gives the time mask_pii takes per message (best of 3
passes over every case), to compare with --module.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import sys
import time
import unicodedata
from types import ModuleType
from typing import Callable, NamedTuple


class Case(NamedTuple):
    text: str
    secret: str  # personal: the digits (or e-mail name) that must not stay readable; ordinary: the text that must stay


Family = Callable[[random.Random], Case]

# -- building blocks ------------------------------------------------------------------

_PROVINCES = ["11", "12", "13", "16", "18", "31", "32", "33", "34", "35", "36", "51", "52", "61", "64", "71",
              "73", "81", "91", "94"]
_MOBILE = ["0811", "0812", "0813", "0821", "0822", "0823", "0852", "0853", "0856", "0857", "0858", "0877",
           "0878", "0881", "0882", "0895", "0896", "0898", "0899", "0838", "0831"]
_AREAS = ["021", "022", "024", "031", "061", "0274", "0271", "0361", "0341", "0411", "0511", "0711", "0778"]
_NAMES = ["budi", "siti", "agus", "dewi", "rina", "joko", "wulan", "andi", "yanti", "hendra", "nur", "eko"]
_BANKS = ["BRI", "BNI", "BCA", "Mandiri", "BSI", "BTN", "Bank Jago", "BJB", "SeaBank", "Bank Rakyat Indonesia",
          "Bank BJB", "Bank Syariah Indonesia", "CIMB Niaga", "Bank Danamon", "Bank Mega", "Bank DKI",
          "Bank Muamalat", "Jenius", "Bank Kalbar", "Bank Nagari"]
_OPENERS = ["", "Min, ", "Assalamualaikum admin, ", "Selamat siang Kemensos, ", "Mohon bantuannya kak. ",
            "Pak/Bu, ", "Halo min 🙏 ", "Permisi, ", "Sudah 3 bulan bansos saya belum cair. ",
            "PKH tahap 2 belum masuk. ", "Tolong dicek, "]
_CLOSERS = ["", " terima kasih", " mohon dibantu 🙏", ". Terima kasih banyak min", " tolong segera ditindaklanjuti",
            "\nHormat saya", " sudah lapor ke desa tapi belum ada kabar", " ya kak", "!!", " mksh"]
_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)} | {"-": "\uff0d", " ": "\u3000", "+": "\uff0b"}
_ARABIC_INDIC = {str(d): chr(0x0660 + d) for d in range(10)}
_PERSIAN = {str(d): chr(0x06F0 + d) for d in range(10)}
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def digits_of(text: str) -> str:
    """The digits of text in order, every digit form folded to 0-9."""
    out = []
    for char in text:
        value = unicodedata.decimal(char, None)
        if value is not None:
            out.append(str(value))
    return "".join(out)


_WORDS_ID = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan"]
_WORDS_EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_WORD_DIGIT = {w: str(d) for words in (_WORDS_ID, _WORDS_EN) for d, w in enumerate(words)} | {"kosong": "0"}
_WORD_RE = re.compile(rf"(?<![A-Za-z])(?:{'|'.join(_WORD_DIGIT)})(?![A-Za-z])", re.IGNORECASE)
_LETTER_RUN = re.compile(r"[0-9OoIilSB]*[0-9][0-9OoIilSB]*")
_LETTER_DIGIT = str.maketrans("OoIilSB", "0011158")


def read_digits(text: str) -> str:
    """The digits a reader sees in text: digit words and letters written next to a
    digit read as digits ("nol delapan 12 3l" -> "081231"), every digit form folded."""
    text = _WORD_RE.sub(lambda m: _WORD_DIGIT[m.group().lower()], text)
    return digits_of(_LETTER_RUN.sub(lambda m: m.group().translate(_LETTER_DIGIT), text))


def sentence(rng: random.Random, body: str) -> str:
    return rng.choice(_OPENERS) + body + rng.choice(_CLOSERS)


def nik(rng: random.Random) -> str:
    day = rng.randint(1, 28) + rng.choice([0, 40])
    return (rng.choice(_PROVINCES) + f"{rng.randint(1, 79):02d}{rng.randint(1, 40):02d}{day:02d}"
            f"{rng.randint(1, 12):02d}{rng.randint(0, 99):02d}{rng.randint(1, 999):04d}")


def mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE) + "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 9)))


def landline(rng: random.Random) -> str:
    area = rng.choice(_AREAS)
    return area + str(rng.randint(2, 9)) + "".join(rng.choice("0123456789") for _ in range(10 - len(area)))


def account(rng: random.Random) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(rng.choice([9, 11, 12, 14, 15])))


def bpjs(rng: random.Random) -> str:
    return "000" + "".join(rng.choice("0123456789") for _ in range(10))


_JOINERS = [" ", ": ", ":", "\n", " :\n", "=", ".", " - ", " (", "\n\n", " adalah ", " saya ", "  "]


def lead(rng: random.Random, words: list[str]) -> str:
    """A word naming the number and what joins it to the number ("NIK: ", "hp\n", "WA saya ")."""
    word = rng.choice(words)
    return word + rng.choice(_JOINERS) if word else ""


def split(digits: str, sizes: list[int]) -> list[str]:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i:i + size])
        i += size
    if i < len(digits):
        out[-1] += digits[i:]
    return out


def phone_groups(rng: random.Random, number: str) -> list[str]:
    return split(number, [4, 4, 4] if len(number) >= 12 else rng.choice([[4, 4], [4, 3], [4, 4, 3]]))


def nik_groups(rng: random.Random, number: str) -> list[str]:
    return split(number, rng.choice([[4, 4, 4, 4], [6, 6, 4], [2, 2, 2, 6, 4], [4, 4, 4, 4]]))


def significant(phone: str) -> str:
    """The digits of a phone number after its 0, 62 or 0062."""
    digits = digits_of(phone)
    for prefix in ("0062", "62", "0"):
        if digits.startswith(prefix):
            return digits[len(prefix):]
    return digits


def translate(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(c, c) for c in text)


# -- personal numbers -----------------------------------------------------------------

def phone_plain(rng: random.Random) -> Case:
    number = mobile(rng)
    groups = phone_groups(rng, number)
    written = rng.choice([number, "-".join(groups), " ".join(groups), ".".join(groups), "+62" + number[1:],
                          "+62 " + " ".join(phone_groups(rng, number))[1:], "62" + number[1:]])
    return Case(sentence(rng, lead(rng, ["hp", "WA", "hubungi", "no. telp", "No.HP/WA", "kontak", ""]) + written),
                significant(number))


def nik_plain(rng: random.Random) -> Case:
    number = nik(rng)
    written = rng.choice([number, " ".join(nik_groups(rng, number)), "-".join(nik_groups(rng, number)),
                          ".".join(split(number, [2, 2, 2, 6, 4]))])
    return Case(sentence(rng, lead(rng, ["NIK", "nik saya", "No KTP", "KK", "no kk", "ini NIK saya", ""]) + written),
                number)


def bank_plain(rng: random.Random) -> Case:
    number = account(rng)
    written = rng.choice([number, " ".join(split(number, [4, 4, 4, 4])), "-".join(split(number, [3, 3, 4, 6])),
                          " ".join(split(number, [4, 2, 6, 2])), "-".join(split(number, [4, 2, 6, 2])),
                          ".".join(split(number, [3, 3, 4]))])
    bank = rng.choice(_BANKS)
    return Case(sentence(rng, lead(rng, [f"rek {bank}", f"no rekening {bank}", f"norek {bank}", bank]) + written),
                number)


def email_plain(rng: random.Random) -> Case:
    local = rng.choice(_NAMES) + rng.choice(["", ".", "_"]) + rng.choice(_NAMES) + str(rng.randint(10, 99))
    return Case(sentence(rng, rng.choice(["email ", "email saya: ", ""]) + local + "@" +
                         rng.choice(["gmail.com", "yahoo.co.id", "kemensos.go.id", "ymail.com", "mail.ugm.ac.id"])),
                local)


def phone_wa_link(rng: random.Random) -> Case:
    number = mobile(rng)
    intl = "62" + number[1:]
    link = rng.choice([f"wa.me/{intl}", f"https://wa.me/{intl}", f"https://wa.me/+{intl}?text=halo",
                       f"https://api.whatsapp.com/send?phone={intl}", f"http://wa.me/{number}",
                       f"api.whatsapp.com/send/?phone={intl}&text=Halo%20min"])
    return Case(sentence(rng, rng.choice(["chat saya di ", "hubungi ", "", "WA: "]) + link), significant(number))


def phone_fullwidth(rng: random.Random) -> Case:
    number = mobile(rng)
    written = rng.choice([number, "-".join(phone_groups(rng, number)), " ".join(phone_groups(rng, number))])
    return Case(sentence(rng, rng.choice(["hp saya ", "no wa ", "hubungi ", ""]) + translate(written, _FULLWIDTH)),
                significant(number))


def phone_arabic_indic(rng: random.Random) -> Case:
    number = mobile(rng)
    written = rng.choice([number, "-".join(phone_groups(rng, number))])
    table = rng.choice([_ARABIC_INDIC, _PERSIAN])
    return Case(sentence(rng, rng.choice(["hp ", "nomor saya ", ""]) + translate(written, table)), significant(number))


def phone_parens(rng: random.Random) -> Case:
    number = mobile(rng)
    head, *rest = phone_groups(rng, number)
    written = f"({head}) " + rng.choice(["-", " ", ""]).join(rest)
    if rng.random() < 0.3:
        written = f"+62 ({head[1:]}) " + "-".join(rest)
    return Case(sentence(rng, rng.choice(["telp ", "hubungi saya di ", "", "no: "]) + written), significant(number))


def phone_slash_pair(rng: random.Random) -> Case:
    first, second = mobile(rng), mobile(rng)
    sep = rng.choice(["/", " / ", "/ ", ", ", " atau "])
    text = sentence(rng, rng.choice(["hp ", "WA ", "hubungi ", ""]) + first + sep + second)
    which = rng.choice([first, second])
    return Case(text, significant(which))


def phone_glued(rng: random.Random) -> Case:
    number = mobile(rng)
    word = rng.choice(["wa", "WA", "hp", "HP", "Hp", "telp", "nohp", "noHP", "nowa", "tlp", "whatsapp"])
    written = rng.choice([number, "-".join(phone_groups(rng, number))])
    return Case(sentence(rng, f"{word}{written}"), significant(number))


def phone_split(rng: random.Random) -> Case:
    number = mobile(rng)
    groups = phone_groups(rng, number)
    sep = rng.choice(["\n", " \n", rng.choice(_ZERO_WIDTH), "\u200b"])
    words = ["hp ", "no hp:\n", "", "WA "] if "\n" in sep else ["hp ", "", "kontak "]
    word = rng.choice(words)
    return Case(sentence(rng, word + sep.join(groups)), significant(number))


def phone_0062(rng: random.Random) -> Case:
    number = mobile(rng)
    rest = number[1:]
    written = rng.choice([f"0062{rest}", f"0062 {rest[:3]} {rest[3:7]} {rest[7:]}", f"0062-{rest[:3]}-{rest[3:]}",
                          f"(0062) {rest}"])
    return Case(sentence(rng, rng.choice(["hp ", "nomor ", "", "WA: "]) + written.strip()), significant(number))


def phone_landline(rng: random.Random) -> Case:
    number = landline(rng)
    area, sub = (number[:3], number[3:]) if number[1] in "2" else (number[:4], number[4:])
    written = rng.choice([number, f"({area}) {sub}", f"{area}-{sub}", f"{area} {sub}", f"+62 {area[1:]} {sub}",
                          f"({area}) {sub[:3]} {sub[3:]}" if len(sub) >= 6 else f"{area}-{sub}"])
    return Case(sentence(rng, rng.choice(["telp rumah ", "telepon ", "hubungi ", "kantor desa: ", ""]) + written),
                significant(number))


def email_at_word(rng: random.Random) -> Case:
    local = rng.choice(_NAMES) + rng.choice(["", ".", "_"]) + rng.choice(_NAMES) + str(rng.randint(10, 99))
    domain = rng.choice(["gmail dot com", "yahoo dot co dot id", "gmail.com", "yahoo.com", "hotmail dot com",
                         "outlook dot com", "ymail dot com"])
    return Case(sentence(rng, rng.choice(["email saya ", "email: ", "kirim ke "]) + f"{local} at {domain}"), local)


def email_bracket(rng: random.Random) -> Case:
    local = rng.choice(_NAMES) + rng.choice(_NAMES) + str(rng.randint(10, 99))
    at = rng.choice(["(at)", "[at]", " (at) ", " [at] ", "{at}", "(AT)"])
    dot = rng.choice(["(dot)", "[dot]", ".", " dot "])
    domain = rng.choice(["gmail", "yahoo", "kemensos"]) + dot + rng.choice(["com", "go" + dot + "id"])
    return Case(sentence(rng, rng.choice(["email ", "surel: ", ""]) + local + at + domain), local)


def email_spaced(rng: random.Random) -> Case:
    local = rng.choice(_NAMES) + "." + rng.choice(_NAMES) + str(rng.randint(10, 99))
    at = rng.choice([" @ ", " @", "@ ", "  @  "])
    return Case(sentence(rng, rng.choice(["email saya ", "email: ", ""]) + local + at +
                         rng.choice(["gmail.com", "yahoo.co.id", "outlook.com"])), local)


def email_fullwidth(rng: random.Random) -> Case:
    local = rng.choice(_NAMES) + rng.choice(_NAMES) + str(rng.randint(10, 99))
    domain = rng.choice(["gmail.com", "yahoo.co.id", "gmail．com"])
    return Case(sentence(rng, rng.choice(["email ", ""]) + local + rng.choice(["＠", " ＠ "]) + domain), local)


def nik_split(rng: random.Random) -> Case:
    number = nik(rng)
    sep = rng.choice(["/", ",", "_", "\u2013", "\t", "  ", " - ", ", ", " / ", "\u2014", "|"])
    dashes = sep in ("\u2013", "\u2014")
    groups = nik_groups(rng, number) if dashes else split(number, rng.choice([[4, 4, 4, 4], [6, 6, 4]]))
    word = rng.choice(["NIK ", "nik: ", "No. KTP ", "NIK saya ", "ktp ", ""])
    return Case(sentence(rng, word + sep.join(groups)), number)


def nik_lines(rng: random.Random) -> Case:
    number = nik(rng)
    groups = split(number, [4, 4, 4, 4]) if rng.random() < 0.5 else split(number, [8, 8])
    sep = rng.choice(["\n", " \n", "\r\n", rng.choice(_ZERO_WIDTH), "\u200b\u200b"])
    return Case(sentence(rng, rng.choice(["NIK:\n", "NIK ", "ktp ", ""]) + sep.join(groups)), number)


def nik_glued(rng: random.Random) -> Case:
    number = nik(rng)
    written = rng.choice([number, " ".join(split(number, [4, 4, 4, 4]))])
    word = rng.choice(["nik", "NIK", "Nik", "ktp", "noktp", "NIK#", "NIK #", "NIK: #", "nik-", "NIK.", "ektp"])
    return Case(sentence(rng, word + written), number)


def nik_pair(rng: random.Random) -> Case:
    first, second = nik(rng), nik(rng)
    sep = rng.choice(["/", " / ", ", ", "/ "])
    text = sentence(rng, rng.choice(["NIK saya dan istri ", "NIK ", "ktp ", ""]) + first + sep + second)
    return Case(text, rng.choice([first, second]))


def nik_fullwidth(rng: random.Random) -> Case:
    number = nik(rng)
    written = rng.choice([number, " ".join(split(number, [4, 4, 4, 4]))])
    table = rng.choice([_FULLWIDTH, _ARABIC_INDIC, _PERSIAN])
    return Case(sentence(rng, rng.choice(["NIK ", ""]) + translate(written, table)), number)


def bank_before_name(rng: random.Random) -> Case:
    number = account(rng)
    bank = rng.choice(_BANKS)
    written = rng.choice([f"{number} {bank}", f"{number} ({bank})", f"{number} - {bank}", f"{number} di {bank}",
                          f"{number}, {bank} a/n {rng.choice(_NAMES).title()}"])
    return Case(sentence(rng, rng.choice(["tolong transfer ke ", "norek ", "no ", "", "dana masuk ke "]) + written),
                number)


def bank_an(rng: random.Random) -> Case:
    number = account(rng)
    name = rng.choice(_NAMES).title()
    written = rng.choice([f"{number} a.n. {name}", f"{number} a.n {name}", f"{number} an. {name}",
                          f"{number} a/n {name}", f"{number} atas nama {name}", f"a.n. {name} {number}"])
    return Case(sentence(rng, rng.choice(["kirim ke ", "", "nomor "]) + written), number)


def bank_far(rng: random.Random) -> Case:
    number = account(rng)
    bank = rng.choice(_BANKS)
    middle = rng.choice([
        " milik ibu saya yang sudah terdaftar sejak lama di dinas sosial, nomornya ",
        " saya, yang dulu dipakai untuk pencairan BLT tahap sebelumnya, yaitu ",
        " (buku tabungan baru dari kantor cabang kecamatan) nomor: ",
        " yang didaftarkan oleh pendamping PKH di desa kami kemarin adalah ",
    ])
    return Case(sentence(rng, rng.choice(["rekening ", "Rekening ", "Bank ", "tabungan di "]) + bank + middle + number),
                number)


def bank_unlisted(rng: random.Random) -> Case:
    number = account(rng)
    bank = rng.choice(["Bank Jago", "BJB", "SeaBank", "BSI", "Bank Rakyat Indonesia", "Bank Kalbar", "Bank Nagari",
                       "Bank Sumut", "Bank Jatim", "blu BCA", "Bank Aceh Syariah", "Jenius"])
    return Case(sentence(rng, f"{bank} {rng.choice(['', 'no ', 'nomor ', ': '])}{number}"), number)


def bank_glued(rng: random.Random) -> Case:
    number = account(rng)
    bank = rng.choice(["BCA", "BRI", "BNI", "Mandiri", "BSI", "bjb", "rek", "norek", "Rek."])
    return Case(sentence(rng, rng.choice(["tf ke ", "ke ", ""]) + bank + rng.choice(["", ":"]) + number), number)


def bpjs_kis(rng: random.Random) -> Case:
    number = bpjs(rng)
    written = rng.choice([number, f"{number[:4]} {number[4:8]} {number[8:]}", f"{number[:4]}-{number[4:]}"])
    word = rng.choice(["No. BPJS ", "KIS ", "no kartu KIS ", "nomor BPJS Kesehatan ", "JKN ", "kartu saya ", ""])
    if rng.random() < 0.25:  # BPJS Ketenagakerjaan (KPJ): 11 digits
        number = str(rng.randint(10, 99)) + "".join(rng.choice("0123456789") for _ in range(9))
        written, word = number, rng.choice(["BPJS Ketenagakerjaan ", "no KPJ BPJS TK: ", "bpjs tk "])
    return Case(sentence(rng, word + written), number)


def spell(rng: random.Random, number: str) -> str:
    """number with its digits as words: Indonesian or English, in any case, now and
    then "kosong" for 0, joined by spaces, dashes or (in groups of four) commas."""
    words = rng.choice([_WORDS_ID, _WORDS_ID, _WORDS_EN])
    spelled = [("kosong" if d == "0" and words is _WORDS_ID and rng.random() < 0.3 else words[int(d)])
               for d in number]
    case = rng.choice([str, str, str.title, str.upper])
    spelled = [case(w) for w in spelled]
    style = rng.random()
    if style < 0.6:
        return " ".join(spelled)
    if style < 0.75:
        return "-".join(spelled)
    return ", ".join(" ".join(spelled[i:i + 4]) for i in range(0, len(spelled), 4))


def phone_spelled(rng: random.Random) -> Case:
    """Digits as words ("nol delapan satu dua ..."), or digits and words mixed
    ("0812 tiga empat ...", "nol delapan satu dua 3456 7890")."""
    number = mobile(rng)
    style = rng.random()
    if style < 0.6:
        written = spell(rng, number)
    elif style < 0.8:
        written = number[:4] + rng.choice([" ", "-"]) + " ".join(_WORDS_ID[int(d)] for d in number[4:])
    elif style < 0.9:
        written = " ".join(_WORDS_ID[int(d)] for d in number[:4]) + " " + " ".join(split(number[4:], [4, 4, 4]))
    else:
        written = "+62 " + " ".join(_WORDS_ID[int(d)] for d in number[1:])
    word = lead(rng, ["no hp", "WA", "hubungi", "kontak", "nomor saya", "telp", "", ""])
    return Case(sentence(rng, word + written), significant(number))


def phone_spaced(rng: random.Random) -> Case:
    """Every digit spaced: "0 8 1 2 3 4 5 6 7 8 9 0", also "0 8 1 2  3 4 5 6  7 8 9 0"."""
    number = mobile(rng)
    style = rng.random()
    if style < 0.6:
        written = " ".join(number)
    elif style < 0.8:
        written = "  ".join(" ".join(group) for group in phone_groups(rng, number))
    elif style < 0.9:
        written = "-".join(number)
    else:
        written = "+6 2 " + " ".join(number[1:])
    word = lead(rng, ["kontak", "hp", "WA", "no hp", "hubungi", "", ""])
    return Case(sentence(rng, word + written), significant(number))


_LOOKALIKE = {"0": "Oo", "1": "lIi", "5": "S", "8": "B"}


def phone_letters(rng: random.Random) -> Case:
    """Letters for digits inside a mobile number: "08l2 3456 789O", "O812-3456-7890";
    S and B only between two digits."""
    number = mobile(rng)
    written = rng.choice(["", " ", "-", "."]).join(phone_groups(rng, number))
    chars = list(written)

    def between_digits(i: int) -> bool:
        return 0 < i < len(chars) - 1 and chars[i - 1].isdigit() and chars[i + 1].isdigit()

    spots = [i for i, c in enumerate(chars) if c in "01" or (c in "58" and between_digits(i))]
    for i in rng.sample(spots, min(len(spots), rng.choice([1, 1, 2, 3]))):
        if chars[i] in "58" and not between_digits(i):
            continue
        chars[i] = rng.choice(_LOOKALIKE[chars[i]])
    word = lead(rng, ["hp", "WA", "hubungi", "no", "", ""])
    return Case(sentence(rng, word + "".join(chars)), significant(number))


PERSONAL: dict[str, Family] = {
    "phone_plain": phone_plain, "nik_plain": nik_plain, "bank_plain": bank_plain, "email_plain": email_plain,
    "phone_wa_link": phone_wa_link, "phone_fullwidth": phone_fullwidth, "phone_arabic_indic": phone_arabic_indic,
    "phone_parens": phone_parens, "phone_slash_pair": phone_slash_pair, "phone_glued": phone_glued,
    "phone_split": phone_split, "phone_0062": phone_0062, "phone_landline": phone_landline,
    "email_at_word": email_at_word, "email_bracket": email_bracket, "email_spaced": email_spaced,
    "email_fullwidth": email_fullwidth,
    "nik_split": nik_split, "nik_lines": nik_lines, "nik_glued": nik_glued, "nik_pair": nik_pair,
    "nik_fullwidth": nik_fullwidth,
    "bank_before_name": bank_before_name, "bank_an": bank_an, "bank_far": bank_far, "bank_unlisted": bank_unlisted,
    "bank_glued": bank_glued,
    "bpjs_kis": bpjs_kis,
    "phone_spelled": phone_spelled, "phone_spaced": phone_spaced, "phone_letters": phone_letters,
}

# -- ordinary numbers -----------------------------------------------------------------

_MONTHS = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember"]


def dates(rng: random.Random) -> Case:
    d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2019, 2026)
    d2, m2 = rng.randint(1, 28), rng.randint(1, 12)
    written = rng.choice([f"{d:02d}/{m:02d}/{y}", f"{d:02d}-{m:02d}-{y}", f"{y}-{m:02d}-{d:02d}", f"{d}.{m}.{y}",
                          f"{d:02d}/{m:02d}/{y} - {d2:02d}/{m2:02d}/{y}", f"{d} {_MONTHS[m - 1]} {y}",
                          f"{d:02d}/{m:02d}/{y}, {d2:02d}/{m2:02d}/{y}",
                          f"{d:02d}-{m:02d}-{y} s.d. {d2:02d}-{m2:02d}-{y}",
                          f"{d:02d}/{m:02d}/{y} jam {rng.randint(7, 16):02d}.{rng.choice(['00', '15', '30'])}"])
    return Case(sentence(rng, rng.choice(["tanggal ", "tgl ", "sejak ", "pada "]) + written + " belum cair"), written)


def years(rng: random.Random) -> Case:
    start = rng.randint(2010, 2022)
    count = rng.randint(3, 5)
    sep = rng.choice([" ", ", ", "/", " - ", "  ", ",", "\n"])
    written = sep.join(str(start + i) for i in range(count))
    return Case(sentence(rng, rng.choice(["tahun ", "data tahun ", "sejak ", "sudah terdaftar "]) + written), written)


def money(rng: random.Random) -> Case:
    amount = rng.choice([300_000, 600_000, 1_750_000, 2_400_000, 200_000, 150_000, 3_000_000, 900_000, 10_000_000])
    dotted = f"{amount:,}".replace(",", ".")
    written = rng.choice([f"Rp {dotted}", f"Rp{dotted}", f"Rp.{dotted},-", f"{dotted}", f"Rp {dotted},00",
                          f"IDR {amount}", f"Rp {dotted} x 3 bulan = Rp {f'{amount * 3:,}'.replace(',', '.')}",
                          f"{amount // 1000}rb", f"{dotted} per bulan", f"Rp {dotted} dan Rp {dotted}",
                          f"{dotted} {dotted} {dotted}"])
    return Case(sentence(rng, rng.choice(["bantuan ", "cuma dapat ", "harusnya ", "potongan "]) + written), written)


def toll_free(rng: random.Random) -> Case:
    written = rng.choice(["0800-1-234-567", "0800 1 234 567", "08001234567", "0800-1-271-272", "0800 140 1276",
                          "0800-140-1276", "0804 1 500 300", "0809 1 234 567", "1500 299", "1500-299", "171",
                          "(021) 171", "14045", "0800-123-4567"])
    return Case(sentence(rng, rng.choice(["call center ", "hubungi layanan bebas pulsa ", "pengaduan di ",
                                          "saya sudah telepon "]) + written), written)


def post_codes(rng: random.Random) -> Case:
    code = str(rng.randint(10110, 99999))
    written = rng.choice([f"kode pos {code}", f"Bandung {code}", f"Kab. Bogor {code}", f"{code}, Jawa Barat",
                          f"kodepos {code} dan {rng.randint(10110, 99999)}"])
    return Case(sentence(rng, "alamat saya Jl. Melati No. " + str(rng.randint(1, 120)) + ", " + written), written)


def rt_rw(rng: random.Random) -> Case:
    rt, rw = rng.randint(1, 20), rng.randint(1, 15)
    written = rng.choice([f"RT {rt:03d} RW {rw:03d}", f"RT {rt:02d}/RW {rw:02d}", f"RT.{rt:03d}/RW.{rw:03d}",
                          f"RT/RW {rt:03d}/{rw:03d}", f"Rt {rt} Rw {rw}", f"RT{rt:02d} RW{rw:02d}",
                          f"RT {rt:03d}/{rw:03d}"])
    return Case(sentence(rng, rng.choice(["warga ", "saya tinggal di ", "di "]) + written +
                         rng.choice(["", " Kel. Sukamaju", " Desa Cibodas"])), written)


def near_words(rng: random.Random) -> Case:
    """Ordinary numbers right after the words that name personal numbers."""
    start = rng.randint(2015, 2022)
    written = rng.choice([
        " ".join(str(start + i) for i in range(4)), ", ".join(str(start + i) for i in range(4)),
        f"{rng.randint(1, 28):02d}-{rng.randint(1, 12):02d}-{rng.randint(2020, 2025)} {rng.randint(7, 16):02d}:30",
        f"Rp {rng.choice(['300.000', '1.750.000', '2.400.000'])}", "300.000-600.000", "0800-1-234-567",
        f"RT {rng.randint(1, 9):03d}/{rng.randint(1, 9):03d}", f"{rng.randint(10110, 99999)}",
        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2020, 2025)}"])
    word = rng.choice(["NIK saya terdaftar di DTKS sejak ", "KK kami pecah tahun ", "rekening BRI saya terima ",
                       "no hp saya ganti ", "kartu KIS aktif ", "WA admin tidak dibalas sejak ", "transfer ke BCA "])
    return Case(sentence(rng, word + written), written)


def mixed(rng: random.Random) -> Case:
    """Several ordinary numbers in one line."""
    d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2020, 2025)
    written = rng.choice([
        f"{d:02d}-{m:02d}-{y} {rng.randint(7, 16):02d}:{rng.choice(['00', '30'])}",
        f"{d:02d}/{m:02d}/{y} Rp 300.000 RT 003/005",
        f"tahap 1 2 3 4 tahun {y}",
        f"{d:02d}.{m:02d}.{y} {rng.randint(7, 16):02d}.00 - {rng.randint(7, 16):02d}.00",
        f"{rng.randint(2, 9)} x 300.000 = {rng.randint(6, 27)}00.000",
        f"{d:02d}-{m:02d}-{y} / {rng.randint(1, 28):02d}-{rng.randint(1, 12):02d}-{y}",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
        f"no surat 460/{rng.randint(100, 999)}/Dinsos/{y}",
    ])
    return Case(sentence(rng, "catatan: " + written), written)


def number_words(rng: random.Random) -> Case:
    """Number words in ordinary sentences, also after a phone word, and plates and
    codes with letters among digits."""
    def w() -> str:
        return rng.choice(_WORDS_ID)

    d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2019, 2026)
    written = rng.choice([
        f"sudah {w()} {w()} hari belum dibalas", f"{w()} {w()} orang saja yang dapat",
        f"tahap {w()} {w()} {w()} belum cair", f"hubungi kami {w()} {w()} kali lagi",
        f"sudah telepon {w()} {w()} kali, {w()} hari berturut-turut", f"anak saya {w()}, umur {w()} {w()} tahun",
        f"tgl {d:02d}-{m:02d}-{y}, {w()} {w()} orang", f"sejak {y} {w()} {w()} kali",
        f"jam {rng.randint(7, 9):02d}.{rng.choice(['00', '15', '30'])}-16.00 {w()} {w()} kali",
        "one two three four five six seven eight nine ten", f"{rng.choice(_WORDS_ID[2:])} belas orang, {rng.choice(_WORDS_ID[2:])} puluh KK",
        f"plat B {rng.randint(1000, 9999)} {rng.choice(['XYZ', 'SBO', 'ILO'])}",
        f"AB {rng.randint(1000, 9999)} CD", f"RT0{rng.randint(1, 9)} RW0{rng.randint(1, 9)}",
        f"INV-08{rng.randint(10, 99)}AB", f"resi SPXID08{rng.randint(10 ** 9, 10 ** 10 - 1)}O",
        f"order TRX-08l{rng.randint(10 ** 8, 10 ** 9 - 1)}",
        f"hubungi kantor jam 08 {rng.randint(10, 12)} 14 16", f"nilai 0 8 {rng.randint(1, 9)} 7",
    ])
    return Case(sentence(rng, written), written)


ORDINARY: dict[str, Family] = {
    "dates": dates, "years": years, "money": money, "toll_free": toll_free, "post_codes": post_codes, "rt_rw": rt_rw,
    "near_words": near_words, "mixed": mixed, "number_words": number_words,
}


# -- hand-written cases -----------------------------------------------------------------
# Written apart from the families above, and not tuned with them at first (2 of the 40 leaked then).

HAND_PERSONAL: list[tuple[str, str]] = [
 ("Assalamualaikum, saya ibu Ani NIK:3578 0145 0790 0003 KK:3578 0120 0110 0004", "3578014507900003"),
 ("Assalamualaikum, saya ibu Ani NIK:3578 0145 0790 0003 KK:3578 0120 0110 0004", "3578012001100004"),
 ("no nik saya 5171-0212-8901-0002 kok ga terdaftar", "5171021289010002"),
 ("nik :  3174 0962 0385 0001", "3174096203850001"),
 ("KTP = 6471 0554 0688 0003 tlg dicek", "6471055406880003"),
 ("NIK (3273 1101 0192 0007)", "3273110101920007"),
 ("3273110101920007 itu nik saya min", "3273110101920007"),
 ("NIK ibu saya 3273.1101.0192.0007", "3273110101920007"),
 ("nik\t3273110101920007", "3273110101920007"),
 ("NIK 3273 110101 920007", "3273110101920007"),
 ("wa aja ke 0856-4321-9876 ya min", "85643219876"),
 ("WA 0857 2345 6789 / 0813 9988 7766", "81399887766"),
 ("Hub. 0813-1234-5678 (Pak Joko)", "81312345678"),
 ("no hp :0878-8765-4321", "87887654321"),
 ("+62-813-1234-5678", "81312345678"),
 ("hp.0812.9876.5432", "81298765432"),
 ("kontak: 62 813 1234 5678", "81312345678"),
 ("telp kantor desa (0265) 331234", "265331234"),
 ("telepon 031-8765432", "318765432"),
 ("https://wa.me/message/62812345678901", "812345678901"),
 ("chat wa.me/628561234567?text=halo", "8561234567"),
 ("nomor saya ０８５７－１２３４－５６７８", "85712345678"),
 ("hp saya ٠٨١٣١٢٣٤٥٦٧٨", "81312345678"),
 ("rek bca 8720 123 456 a.n. Rina", "8720123456"),
 ("tolong tf ke rekening 1410012345678 mandiri", "1410012345678"),
 ("Rek. BNI 0912345678 an Siti", "0912345678"),
 ("transfer ke BRI 3301-01-012345-53-7", "330101012345537"),
 ("norek jago 101234567890", "101234567890"),
 ("bisa transfer ke SeaBank saya 901234567890", "901234567890"),
 ("no.rek:7123456789(BSI)", "7123456789"),
 ("rekening BJB 0012345678100", "0012345678100"),
 ("KIS 0001876543210 tidak aktif", "0001876543210"),
 ("no BPJS kesehatan saya 0002 1234 56789", "0002123456789"),
 ("email: siti.aminah77 at yahoo dot com", "siti.aminah77"),
 ("emailnya sitiaminah77(at)gmail.com", "sitiaminah77"),
 ("kirim ke ani_lestari @ gmail . com", "ani_lestari"),
 ("imel: ANI.LESTARI88@GMAIL.COM", "ANI.LESTARI88"),
 ("NIK\n3578\n0145\n0790\n0003", "3578014507900003"),
 ("nik 3578‍0145‍0790‍0003", "3578014507900003"),
 ("NIK-3578014507900003", "3578014507900003"),
]
HAND_ORDINARY: list[str] = [
 "cair tgl 15-11-2025 jam 09.30 WIB", "tahun 2019, 2020, 2021 tidak dapat", "periode 2023-2024 dan 2024-2025",
 "uang Rp 2.400.000 dipotong Rp 200.000", "dapat 1.200.000 harusnya 2.400.000", "bebas pulsa 0800 1 500 500",
 "hotline 0800-1-888-888", "kode pos 65145 Malang", "RT 004 RW 011 Desa Sukamaju", "RT/RW: 02/03",
 "Jl. Sudirman No. 45 Kav. 12-14 Jakarta 12190", "lahir 17 Agustus 1985", "tgl lahir 17-08-1985",
 "sudah 2 tahun 3 bulan", "PKH tahap 1 2 3 4 2025", "harga gas 3 kg Rp 22.000 - Rp 25.000",
 "antrean nomor 123 dari 500", "pukul 08.00-15.00 Senin-Jumat", "1.250 KPM di 15 desa",
 "NIK saya belum padan sejak 2022 2023 2024", "rekening BRI saya dapat 600.000 tgl 05/11/2025",
 "tahun anggaran 2025/2026", "hubungi 110 atau 112", "call center 171", "SK No. 123/HUK/2025",
]


# -- checks ----------------------------------------------------------------------------

def leaked(masked: str, case: Case, family: str) -> bool:
    if family.startswith("email"):
        return case.secret.lower() in masked.lower()
    return case.secret in read_digits(masked)


def false_masked(masked: str, case: Case) -> bool:
    return case.secret not in masked


def load(path: str | None) -> ModuleType:
    if path is None:
        from bot import pii

        return pii
    spec = importlib.util.spec_from_file_location("pii_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(pii: ModuleType, per_family: int, seed: int) -> tuple[dict[str, int], dict[str, int]]:
    leaks: dict[str, int] = {}
    false_masks: dict[str, int] = {}
    for name, family in PERSONAL.items():
        rng = random.Random(f"{seed}:{name}")
        cases = [family(rng) for _ in range(per_family)]
        leaks[name] = sum(leaked(pii.mask_pii(c.text), c, name) for c in cases)
    for name, family in ORDINARY.items():
        rng = random.Random(f"{seed}:{name}")
        cases = [family(rng) for _ in range(per_family)]
        false_masks[name] = sum(false_masked(pii.mask_pii(c.text), c) for c in cases)
    return leaks, false_masks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-family", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--module", help="path of another pii.py to measure")
    parser.add_argument("--show", type=int, default=0, help="print this many failing examples per family")
    args = parser.parse_args(argv)
    pii = load(args.module)
    leaks, false_masks = run(pii, args.per_family, args.seed)
    print(f"pii masking, {args.per_family} variants per family, seed {args.seed}"
          + (f", module {args.module}" if args.module else ""))
    print(f"{'family':<22}{'leaks':>8}")
    for name, count in leaks.items():
        print(f"{name:<22}{count:>8}")
    print(f"{'total':<22}{sum(leaks.values()):>8}  of {args.per_family * len(leaks)}")
    print(f"\n{'ordinary family':<22}{'false masks':>12}")
    for name, count in false_masks.items():
        print(f"{name:<22}{count:>12}")
    print(f"{'total':<22}{sum(false_masks.values()):>12}  of {args.per_family * len(false_masks)}")
    hand_leaks = sum(leaked(pii.mask_pii(t), Case(t, secret), "email" if not secret.isdigit() else "")
                     for t, secret in HAND_PERSONAL)
    hand_false = sum(pii.mask_pii(t) != t for t in HAND_ORDINARY)
    print(f"\nhand-written: {hand_leaks} leaks of {len(HAND_PERSONAL)}, "
          f"{hand_false} false masks of {len(HAND_ORDINARY)}")
    texts = [t for t, _ in HAND_PERSONAL] + HAND_ORDINARY
    for name, family in {**PERSONAL, **ORDINARY}.items():
        rng = random.Random(f"{args.seed}:{name}")
        texts += [family(rng).text for _ in range(args.per_family)]
    print(f"time: {per_message(pii, texts):.1f} us per message ({len(texts)} messages, best of 3)")
    if args.show:
        _show(pii, args.per_family, args.seed, args.show)
    return 0


def per_message(pii: ModuleType, texts: list[str]) -> float:
    """Microseconds mask_pii takes per message, the best of 3 passes over texts."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for text in texts:
            pii.mask_pii(text)
        best = min(best, time.perf_counter() - began)
    return best / len(texts) * 1e6


def _show(pii: ModuleType, per_family: int, seed: int, limit: int) -> None:
    for name, family in {**PERSONAL, **ORDINARY}.items():
        rng = random.Random(f"{seed}:{name}")
        shown = 0
        for _ in range(per_family):
            case = family(rng)
            masked = pii.mask_pii(case.text)
            bad = leaked(masked, case, name) if name in PERSONAL else false_masked(masked, case)
            if bad and shown < limit:
                print(f"\n[{name}] {case.text!r}\n  -> {masked!r}")
                shown += 1


if __name__ == "__main__":
    sys.exit(main())
