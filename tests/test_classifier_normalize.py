"""The normaliser folds spammers' spellings to plain words."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.normalize import (HOMOGLYPH_FILE, build_homoglyph_map, features_text, fold, leet, match_views, normalize,
                                   respace)

# ../shared beside the repository (as in CI)
JUDOL_MAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "public" / "judol_youtube" / "obfuscation_mapping.json"


@pytest.mark.parametrize("text, expected", [
    ("𝐒𝐋𝐎𝐓 𝐆𝐀𝐂𝐎𝐑", "slot gacor"),          # mathematical bold
    ("𝑺𝑳𝑶𝑻", "slot"),                       # mathematical bold italic
    ("ꜱʟᴏᴛ ɢᴀᴄᴏʀ", "slot gacor"),            # small capitals
    ("🅳🅴🅿🅾", "depo"),                      # negative squared
    ("ⓢⓛⓞⓣ", "slot"),                        # circled
    ("ＳＬＯＴ", "slot"),                      # fullwidth
    ("≋D≋E≋W≋A≋", "dewa"),                    # decorations between letters
    ("ѕlоt", "slot"),                          # Cyrillic look-alikes
    ("Bantuan Sosial", "bantuan sosial"),
])
def test_homoglyphs_fold_to_ascii(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_keycap_and_enclosed_digits_are_digits() -> None:
    assert fold("8️⃣8️⃣") == "88"
    assert fold("⑧⑧") == "88"
    assert fold("【8】") .strip() == "8"


@pytest.mark.parametrize("text, expected", [
    ("sl0t g4c0r", "slot gacor"),
    ("cek b1o", "cek bio"),
    ("m4xw1n", "maxwin"),
])
def test_leetspeak_view(text: str, expected: str) -> None:
    assert leet(text) == expected
    assert expected in match_views(text)


def test_leetspeak_leaves_amounts_and_names_alone() -> None:
    assert "18rb" not in leet("harga 18rb")  # numbers become tokens, not letters
    assert "iok" not in leet("depo 10k")
    assert "dewa88" in leet("DEWA88")


def test_leet_is_only_an_extra_view() -> None:
    assert normalize("sl0t") == "sl0t"
    assert match_views("slot gacor") == ("slot gacor",)


@pytest.mark.parametrize("text, expected", [
    ("s l o t g a c o r", "slotgacor"),
    ("cek s.l.o.t", "cek slot"),
    ("gacoooor bangeeeet", "gacor banget"),
    ("min!!!!!", "min!"),
])
def test_spacing_and_repeats(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("tokenised, typed", [
    ("tempat nya nyaman , makanan nya enak .", "tempatnya nyaman, makanannya enak."),
    ("kok belum cair ? sudah 3 bulan !", "kok belum cair? sudah 3 bulan!"),
    ("rumah nya ( rt 05 ) kebanjiran", "rumahnya ( rt 05) kebanjiran"),
])
def test_respace_undoes_corpus_tokenisation(tokenised: str, typed: str) -> None:
    assert respace(tokenised) == typed
    assert features_text(tokenised, spacing=True) == features_text(typed, spacing=True)


def test_respace_leaves_what_people_type_alone() -> None:
    for text in ("sudah ku bilang dari dulu", "nya nya nya", "rp 5.000, ya", "min... gimana?", "2 nya"):
        assert respace(text) == text
    assert features_text("tempat nya nyaman .") == "tempat nya nyaman ."  # only when asked (old models)


def test_urls_mentions_numbers_become_tokens() -> None:
    out = normalize("cek https://bit.ly/abc @kemensos NIK 3201234567890001 harga 18rb www.situs.com")
    assert out == "cek _url_ _user_ nik _num_ harga _num_ rb _url_"


def test_ordinary_words_untouched() -> None:
    assert normalize("min PKH tahap 2 kok belum cair ya?") == "min pkh tahap _num_ kok belum cair ya?"
    assert normalize("maaf, saya mau tanya") == "maaf, saya mau tanya"


def test_shipped_map_is_generated_from_unicode_names() -> None:
    doc = json.loads(HOMOGLYPH_FILE.read_text(encoding="utf-8"))
    assert "unicodedata" in doc["source"]
    assert doc["map"] == build_homoglyph_map()


@pytest.mark.skipif(not JUDOL_MAP.exists(), reason="judol data not present")
def test_covers_the_judol_obfuscation_map() -> None:
    mapping = json.loads(JUDOL_MAP.read_text(encoding="utf-8"))
    missed = [k for k, v in mapping.items() if fold(k).replace(" ", "") != v.lower()]
    assert not missed


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    for f in (fold, normalize, leet, features_text):
        assert isinstance(f(text), str)
    assert 1 <= len(match_views(text)) <= 2


def test_tone_words_name_the_mood_of_emoji_the_model_may_never_have_seen() -> None:
    from classifiers.normalize import tone_words

    assert tone_words("preman berseragam 🤬") == tone_words("preman berseragam 😡") == "xtangry"
    assert tone_words("keren bgt sistemnya 👏👏 🤡") == "xtclap xtmock"
    assert tone_words("integrasi apaan 🙄") == "xtannoyed"
    assert tone_words("makasih pendamping 🙏❤️") == "xtwarm"
    assert tone_words("💔") == "xtsad"
    assert tone_words("sabar sampe kapan???") == "xtinsist"
    assert tone_words("PKH tahap 2 kapan cair?") == ""  # one ? is an ordinary question
    assert features_text("kapan cair?", tone=True) == features_text("kapan cair?")  # no tone, no change
    assert features_text("kapan cair??", tone=True).endswith(" || xtinsist")
