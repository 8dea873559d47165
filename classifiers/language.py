"""Which language a message is in: "id", "en", "jv", "su" or "mixed".

langdetect alone is poor on short Indonesian social-media text (it answers
"tl", "ms", "so", "sw"...) and knows neither Javanese nor Sundanese, so it is
only the last word here. First come small marker-word lexicons: Javanese and
Sundanese function words that Indonesian does not use, and English and
Indonesian function words to spot code-mixing. Anything unsure, empty or
emoji-only is "id", the language of nearly all traffic.
"""

from __future__ import annotations

import re
from functools import lru_cache

from classifiers.normalize import normalize

# Words (or two-word phrases) that mark Javanese and are not Indonesian.
JV_MARKERS = frozenset(
    """
    ora opo piye kulo kula nggih sampun dereng mboten boten wes wis durung ngopo
    ngapa iki kuwi kui niki niku nopo menapa panjenengan sampeyan njenengan suwun
    nuwun matur arep ning karo nek lek tenan mbok ojo aja ae wae tak kok_ora
    bantuane duite jenenge omahku omahe sedoyo kabeh durung_cair ndang gek isih
    wonten dados badhe saged mawon kados ngoten pripun kepiye piye_iki opo_ora
    gawe marai ngene ngono dhewe dewe ngerti weruh mlebu metu bapake ibuke anake
    simbah mbah_e lungo mulih tuku regane larang murah_e ra iso isa neng deso saka
    oleh mlaku ingkang pundi sanget mugi rego munggah turu apik carane dadi njaluk
    ewu saben wedi tulung mestine jenengku loro mbulet cetha bansose dijupuk
    diaktifke dibenerke dicek_min lare nampi programipun kulo_nuwun pripun_niki
    meneh jadwale fotone koyo bakul mung
    mriki mrika sakniki saiki mengko sesuk wingi ngendi endi sopo piro pinten
    """.split()
)
# "aja" and "tak" are also Indonesian; they count only alongside another marker.
JV_WEAK = frozenset({"ngerti", "aja", "tak", "ae", "wae", "nek", "lek", "karo", "ning", "arep", "gawe", "kok_ora", "dewe"})

SU_MARKERS = frozenset(
    """
    teu acan abdi naon kumaha atuh mah hatur nuhun tos teh henteu sanes iraha
    ayeuna kamari bade hoyong ieu eta nya pisan urang aya_keneh keneh kedah
    sareng ka_abdi mangga punten damang wilujeng enjing dinten sabaraha kunaon
    naha moal tiasa tiasa_kitu kitu kieu wae_atuh dupi mung nembe parantos
    rerencangan kulawarga imah artos bantosan bantuanana abdi_teh euweuh gawe_teh
    ngan ukur hungkul dina weh ulin nungguan teu_aya can acan_kenging kenging
    deui ge atapna becek_pisan nampi_keneh didieu ditu dieu saha kamana timana lain_mah sakedik seueur
    """.split()
)
SU_WEAK = frozenset({"teh", "mah", "nya", "bade", "eta", "ieu", "wae_atuh", "punten", "mangga", "naha", "pisan", "urang", "kitu"})

EN_WORDS = frozenset(
    """
    the a an is are was were be been am i you he she we they it my your our their
    this that these those what when where why how who which do does did done
    not no yes please thank thanks hello hi dear sir madam can could would should
    will shall may might must have has had get got of to in on at for from with
    about and or but if so because there here still yet already just only very
    really why how much many help money aid price prices app data name register
    registered received receive never since months month weeks days year
    ministry government social program apply status check office officer
    literally honestly useless nothing action great policy proud congrats wow
    such sorry next week inactive listed expired only account selected click
    link claim reward offer guaranteed daily reply join u ur pls thx btw
    zero all at any anyone someone need want know like love good bad worst
    """.split()
)
# English words that are not loanwords in Indonesian: one is enough to call a mostly Indonesian text mixed.
EN_FUNCTION = frozenset(
    """
    the of only so such is are this near my for or was were my your our you u sorry honestly literally
    please next week nothing all really actually because which what when
    """.split()
)
ID_WORDS = frozenset(
    """
    yang dan di ke dari ini itu itu saya aku kami kita kamu anda dia mereka ada
    tidak tak gak ga nggak enggak ngga belum sudah udah udh blm sdh akan mau bisa
    kok ya yah dong deh sih nih tuh min admin pak bu bapak ibu kak mas mbak tolong
    mohon apa kapan bagaimana gimana gmn kenapa kenapa knp mana dimana berapa
    untuk buat sama dengan dgn atau tapi tp karena krn kalau kalo jika sampai
    sampe lagi juga jg masih harus bantuan bansos harga beli cair terima kasih
    makasih terimakasih tahun bulan hari data nama daftar dah nya aja banget bgt
    rakyat kalian makin tiap ngasih padahal tiba caranya katanya terus kah
    """.split()
)

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_MALAYISH = frozenset({"id", "ms", "tl", "so", "sw", "jw", "su", "af", "nl", "sq", "hr", "sl", "lt", "lv", "et", "fi", "ro", "it", "pt", "es", "ca", "cy", "vi", "tr", "hu", "pl", "cs", "sk", "de", "fr", "no", "da", "sv"})


@lru_cache(maxsize=1)
def _factory() -> None:
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0  # langdetect is random without it


def warm_up() -> None:
    """Load langdetect's profiles now (about a second) rather than on the first message."""
    _langdetect("selamat pagi semuanya, apa kabar")


def _langdetect(text: str) -> tuple[str, float]:
    _factory()
    from langdetect import detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return "id", 0.0
    return best.lang, float(best.prob)


def _tokens(text: str) -> list[str]:
    norm = normalize(text[:5000])
    return [w for w in _WORD_RE.findall(norm) if w not in ("_url_", "_user_", "_num_", "url", "user", "num")]


def _with_bigrams(words: list[str]) -> list[str]:
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


def _score(words: list[str], strong: frozenset[str], weak: frozenset[str]) -> float:
    grams = _with_bigrams(words)
    hits_strong = sum(1 for g in grams if g in strong and g not in weak)
    hits_weak = sum(1 for g in grams if g in weak)
    return hits_strong + (0.5 * hits_weak if hits_strong else 0.0)


def detect_language(text: str) -> str:
    """"id", "en", "jv", "su" or "mixed"; never raises."""
    words = _tokens(text or "")
    if not words:
        return "id"  # empty, emoji, URL or numbers only
    n = len(words)
    jv = _score(words, JV_MARKERS, JV_WEAK)
    su = _score(words, SU_MARKERS, SU_WEAK)
    en = sum(1 for w in words if w in EN_WORDS)
    idn = sum(1 for w in words if w in ID_WORDS)
    regional = max(jv, su)
    if regional >= 1 and regional >= 0.1 * n:
        if en >= 2 and en >= 0.25 * n:
            return "mixed"
        return "jv" if jv >= su else "su"
    if en and idn:
        if en >= 2 and idn >= 2 and min(en, idn) >= 0.2 * (en + idn):
            return "mixed"
        if idn >= 2 and any(w in EN_FUNCTION for w in words):
            return "mixed"
    if en >= 1 and en >= 0.3 * n and idn <= max(1, 0.1 * n):
        lang, prob = _langdetect(" ".join(words))
        if lang == "en" or en >= 0.5 * n:
            return "en"
        return "id"
    if idn >= 1:
        return "id"
    lang, prob = _langdetect(" ".join(words))
    if lang == "en" and prob >= 0.9 and n >= 3:
        return "en"
    return "id"
