"""Language detection on short, odd and code-mixed texts."""

import pytest

from classifiers.language import detect_language


@pytest.mark.parametrize("text", ["", "   ", "😀😀🙏", "https://example.com/x", "@kemensos", "12345", "\x00\x01"])
def test_nothing_to_read_is_indonesian(text: str) -> None:
    assert detect_language(text) == "id"


@pytest.mark.parametrize("text", ["mantap", "bansos", "terimakasih", "min", "p"])
def test_one_word_is_sane(text: str) -> None:
    assert detect_language(text) == "id"


@pytest.mark.parametrize("text, lang", [
    ("min bansos PKH tahap 2 kok belum cair ya? udah 3 bulan", "id"),
    ("Good morning, when will the social assistance for my mother be paid?", "en"),
    ("bantuan e kok ora cair-cair to min, piye iki", "jv"),
    ("nggih min, sampun dereng nggih bansos e", "jv"),
    ("punten min, abdi teu acan nampi bantuan, kumaha atuh?", "su"),
    ("hatur nuhun pisan min, bantosanana tos nampi", "su"),
    ("honestly kemensos ini useless banget, no action at all", "mixed"),
    ("min BPNT aku expired, what should I do ya? gimana caranya", "mixed"),
])
def test_languages(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_deterministic() -> None:
    text = "ok sip"
    assert len({detect_language(text) for _ in range(20)}) == 1


def test_huge_text() -> None:
    assert detect_language("tolong min " * 20000) == "id"
