"""Property: however a personal number is written in a citizen's message, masking
leaves none of it readable; ordinary numbers (dates, years, amounts, toll-free
numbers, post codes, RT/RW) stay as they were written.

The families of writings are the ones tests/bench/bench_pii.py measures; here
hypothesis draws from them (and shrinks a failure to its simplest sentence).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.pii import has_pii, mask_pii
from tests.bench.bench_pii import (
    HAND_ORDINARY, HAND_PERSONAL, ORDINARY, PERSONAL, Case, digits_of, false_masked, leaked,
)

personal_family = st.sampled_from(sorted(PERSONAL))
ordinary_family = st.sampled_from(sorted(ORDINARY))
rngs = st.randoms(use_true_random=False)


@settings(max_examples=400, deadline=None)
@given(family=personal_family, rng=rngs)
def test_no_personal_number_stays_readable(family: str, rng: random.Random) -> None:
    case = PERSONAL[family](rng)
    masked = mask_pii(case.text)
    assert not leaked(masked, case, family), f"{family}: {case.text!r} -> {masked!r}"
    assert has_pii(case.text)
    assert mask_pii(masked) == masked
    assert not has_pii(masked)


@settings(max_examples=300, deadline=None)
@given(family=ordinary_family, rng=rngs)
def test_ordinary_numbers_stay_readable(family: str, rng: random.Random) -> None:
    case = ORDINARY[family](rng)
    masked = mask_pii(case.text)
    assert not false_masked(masked, case), f"{family}: {case.text!r} -> {masked!r}"
    assert masked == case.text


@settings(max_examples=300, deadline=None)
@given(personal=personal_family, ordinary=ordinary_family, rng=rngs, personal_first=st.booleans())
def test_one_message_with_both(personal: str, ordinary: str, rng: random.Random, personal_first: bool) -> None:
    secret, plain = PERSONAL[personal](rng), ORDINARY[ordinary](rng)
    text = f"{secret.text}. {plain.text}" if personal_first else f"{plain.text}. {secret.text}"
    masked = mask_pii(text)
    assert not leaked(masked, secret, personal), f"{text!r} -> {masked!r}"
    assert plain.secret in masked, f"{text!r} -> {masked!r}"


@given(rng=rngs)
def test_digits_of_folds_every_digit_form(rng: random.Random) -> None:
    number = "".join(rng.choice("0123456789") for _ in range(12))
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in number)
    arabic = "".join(chr(0x0660 + int(d)) for d in number)
    assert digits_of(f"a{fullwidth}-b {arabic}") == number + number


def test_hand_written_cases() -> None:
    """The cases written apart from the families (tests/bench/bench_pii.py)."""
    for text, secret in HAND_PERSONAL:
        masked = mask_pii(text)
        assert not leaked(masked, Case(text, secret), "" if secret.isdigit() else "email"), f"{text!r} -> {masked!r}"
    for text in HAND_ORDINARY:
        assert mask_pii(text) == text
