"""Complaint topics: the routing.yaml keywords complaints mention, and the word pairs
that come back most often once the words that say nothing about a topic are removed.

Simple and explainable on purpose; shared by the daily digest and the monthly report.
Pure: texts in, topics out.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from bot.config import RoutingConfig


@dataclass(frozen=True)
class Topic:
    term: str
    count: int  # complaint texts that mention it
    kind: str  # "kata kunci" (a routing.yaml keyword) or "frasa" (a frequent word pair)


_LETTERS = re.compile(r"[^\W\d_]+")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")

# Function words, chat slang, greetings and forms of address: they say nothing about the topic.
STOP_WORDS = frozenset("""
ada adalah agar akan aku aja amin anda apa apakah atas atau bagaimana bagi bahwa baik banget bang bapak
belom bgt biar bila bisa bs buat bukan cuma dah dalam dan dari dgn dengan deh di dia dong dr engga enggak
ga gak gan gimana gitu gmn gw gue hal halo hallo hanya hari harus ia ialah ibu ini itu iya jadi jg juga
kah kak kakak kalau kalian kalo kami kan kapan karena kasih kayak ke kenapa kita klo knp kok krn kurang
lagi lah lebih lg lo lu mana mas masih mau mbak melalui memang mereka min mimin minta mohon mulai nah
namun nggak ngga ni nih nya oleh pada pagi pak para pd pun saja sama sampai sampe sangat saya sdh sedang
sejak selamat semua seperti setelah siang sih silakan sini situ sm sore sudah supaya sy tahun tanya tapi
telah tentang terima terhadap tersebut tetapi tidak tlg tolong tp tsb ttg tuh udah udh untuk utk wb wr
se ya yaa yah yang yg admin assalamualaikum the and to of is in it for you this that please thanks
""".split())


# Formal-letter boilerplate: salutations, titles of office, the connectives of official
# Indonesian. They pad a complaint written as a letter ("Kepada Yth. Bapak Direktur Jenderal
# ..., apabila diperlukan informasi mengenai ...") and name no topic.
LETTER_WORDS = frozenset("""
yth kepada hormat perihal lampiran sehubungan berkenaan terkait mengenai apabila jika bilamana
diperlukan dibutuhkan dimaksud berikut adapun yakni yaitu demikian perhatian perhatiannya kerjasama
kerjasamanya disampaikan menyampaikan sampaikan informasi keterangan penjelasan kiranya berkenan
sekiranya saudara saudari sdr sdri tuan nyonya pimpinan jajaran direktur jenderal dirjen menteri
kementerian sekretaris sekjen kepala deputi inspektur pejabat instansi lembaga republik indonesia ri
salam terimakasih wassalamualaikum wassalam warahmatullahi wabarakatuh
""".split())
IGNORED = STOP_WORDS | LETTER_WORDS


def words(text: str) -> list[str]:
    """Lower-case letter runs, fancy letters folded and stretched letters shortened ("lamaaa" -> "lama")."""
    folded = _REPEATS.sub(r"\1", unicodedata.normalize("NFKC", text).casefold())
    return _LETTERS.findall(folded)


Text = str | Sequence[str]  # a text, or its words() when the caller has split it already


def content_words(text: Text) -> list[str]:
    """The words that carry the topic: no stop words, no letter boilerplate, no single letters."""
    return [w for w in (words(text) if isinstance(text, str) else text) if len(w) > 1 and w not in IGNORED]


def routing_keywords(routing: RoutingConfig) -> list[str]:
    return [kw for acc in routing.accounts.values() for unit in acc.units.values() for kw in unit.keywords]


KeywordIndex = Mapping[str, Sequence[tuple[tuple[str, ...], str]]]


def keyword_index(keywords: Iterable[str]) -> KeywordIndex:
    """First word -> (word sequence, keyword shown). Spellings that differ only in spaces
    and hyphens ("e-warong", "e warong", "ewarong") are one keyword, shown as first written."""
    shown: dict[str, str] = {}
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for keyword in keywords:
        seq = tuple(words(keyword))
        if seq and all(seq != known for known, _ in index.get(seq[0], ())):
            index.setdefault(seq[0], []).append((seq, shown.setdefault("".join(seq), keyword)))
    return index


def keywords_in(seq: Sequence[str], index: KeywordIndex) -> dict[str, tuple[str, ...]]:
    """The keywords found in a text's words (shown -> words matched)."""
    found: dict[str, tuple[str, ...]] = {}
    for i, word in enumerate(seq):
        for keyword, shown in index.get(word, ()):
            if tuple(seq[i:i + len(keyword)]) == keyword:
                found[shown] = keyword
    # "pbi" inside "kis pbi" is the same mention: keep the longer keyword only.
    return {k: part for k, part in found.items()
            if not any(len(other) > len(part) and _contains(other, part) for other in found.values())}


def _contains(seq: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(seq[i:i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def top_topics(texts: Iterable[Text], keywords: Iterable[str], *, limit: int = 10, min_pair: int = 2) -> tuple[Topic, ...]:
    """The keywords and word pairs mentioned by the most texts (each counted once per text)."""
    index = keyword_index(keywords)
    keyword_hits: Counter[str] = Counter()
    pair_hits: Counter[str] = Counter()
    for text in texts:
        seq = words(text) if isinstance(text, str) else text
        found = keywords_in(seq, index)
        keyword_hits.update(found.keys())  # a mapping would add its values
        # A pair that repeats a keyword's word adds nothing to the keyword itself.
        taken = {w for part in found.values() for w in part}
        content = content_words(seq)
        pair_hits.update({f"{a} {b}" for a, b in zip(content, content[1:]) if a != b and not {a, b} & taken})
    topics = [Topic(k, n, "kata kunci") for k, n in keyword_hits.items()]
    topics += [Topic(p, n, "frasa") for p, n in pair_hits.items() if n >= min_pair]
    topics.sort(key=lambda t: (-t.count, t.kind != "kata kunci", t.term))
    return tuple(topics[:limit])
