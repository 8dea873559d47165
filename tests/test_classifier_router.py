"""Routing: the media team's keywords win, the learned model decides the rest."""

from typing import Sequence

from classifiers.base import AccountRules, UnitRules
from classifiers.router import Router

RULES = {
    "kemensos": AccountRules("kemensos", "humas", (
        UnitRules("linjamsos", ("pkh", "program keluarga harapan", "korban banjir")),
        UnitRules("pfm", ("bpnt", "e-warong", "kks")),
        UnitRules("pusdatin", ("dtks", "cek bansos")),
        UnitRules("itjen", ("pungli", "dipotong pendamping")),
        UnitRules("humas", ("minyakita",)),
    )),
    "kemendag": AccountRules("kemendag", "humas", (
        UnitRules("pdn", ("minyak goreng", "het")),
        UnitRules("pktn", ("garansi",)),
        UnitRules("humas", ("pkh",)),
    )),
}


class FixedModel:
    """A unit model that always prefers one unit."""

    def __init__(self, best: str, others: Sequence[str] = ()) -> None:
        self.best = best
        self.others = others

    def unit_probs(self, accounts: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]]:
        probs = {u: 0.1 for u in self.others} | {self.best: 0.7}
        return [dict(probs) for _ in texts]


def test_rule_wins_over_model() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "pkh saya belum cair", ("complaint",), {"pfm": 0.9, "linjamsos": 0.05}) == ("linjamsos", "rule")


def test_rule_matches_obfuscated_and_spaced_words() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "𝐏𝐊𝐇 kapan cair", ("question",))[0] == "linjamsos"
    assert r.route("kemensos", "agen ewarong nakal", ("complaint",))[0] == "pfm"
    assert r.route("kemensos", "agen e warong nakal", ("complaint",))[0] == "pfm"


def test_whole_words_only() -> None:
    r = Router(RULES)
    # "het" must not match inside "ethnic"/"sehat", "kks" not inside "kksx"
    assert r.route("kemendag", "produk sehat kok mahal?", ("question",)) == ("humas", "default")


def test_new_keyword_takes_effect_without_retraining() -> None:
    text = "bantuan atensi untuk lansia kapan?"
    model = FixedModel("linjamsos", ["rehsos"])
    before = Router(RULES, model)
    assert before.route("kemensos", text, ("question",), {"linjamsos": 0.7, "rehsos": 0.1}) == ("linjamsos", "model")
    rules = dict(RULES)
    acc = RULES["kemensos"]
    rules["kemensos"] = AccountRules(acc.account, acc.default_unit, acc.units + (UnitRules("rehsos", ("lansia",)),))
    after = Router(rules, model)
    assert after.route("kemensos", text, ("question",), {"linjamsos": 0.7, "rehsos": 0.1}) == ("rehsos", "rule")


def test_several_rules_the_model_picks_among_them() -> None:
    r = Router(RULES)
    text = "pendamping PKH pungli, bpnt juga dipotong"
    assert r.route("kemensos", text, ("complaint",), {"itjen": 0.6, "linjamsos": 0.3, "pfm": 0.1}) == ("itjen", "rule")
    assert r.route("kemensos", text, ("complaint",), {"pusdatin": 0.9, "pfm": 0.1}) == ("pfm", "rule")


def test_several_rules_without_model_longest_match() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "pkh saya dipotong pendamping", ("complaint",)) == ("itjen", "rule")


def test_negative_only_goes_to_default_unit() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "pkh kalian payah semua", ("negative",)) == ("humas", "default")


def test_spam_and_no_label_go_nowhere() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "pkh slot gacor", ("spam",)) == (None, "none")
    assert r.route("kemensos", "terima kasih pkh", ()) == (None, "none")


def test_other_ministry_topic_goes_to_humas() -> None:
    r = Router(RULES)
    # by the humas keyword of routing.yaml ...
    assert r.route("kemensos", "minyakita langka min", ("complaint",)) == ("humas", "rule")
    assert r.route("kemendag", "pkh ibu saya kapan cair?", ("question",)) == ("humas", "rule")
    # ... and by the learned model when no keyword matches
    assert r.route("kemensos", "harga cabai mahal sekali", ("complaint",), {"humas": 0.8, "pfm": 0.2}) == ("humas", "model")


def test_model_without_rule_and_unknown_units_ignored() -> None:
    r = Router(RULES)
    assert r.route("kemensos", "kursi roda untuk ayah", ("question",), {"rehsos": 0.9}) == ("humas", "default")
    assert r.route("kemensos", "bantuan kursi roda", ("question",), {"pdn": 0.9, "humas": 0.1}) == ("humas", "model")


def test_unknown_account() -> None:
    assert Router(RULES).route("kemenkeu", "pajak", ("question",)) == (None, "none")


def test_route_many_runs_the_model_once_on_routable_messages() -> None:
    calls = []

    class Counting(FixedModel):
        def unit_probs(self, accounts, texts):  # type: ignore[no-untyped-def]
            calls.append(list(texts))
            return super().unit_probs(accounts, texts)

    r = Router(RULES, Counting("pusdatin"))
    out = r.route_many(["kemensos"] * 4, ["lansia", "slot", "payah", "pkh"],
                       [("question",), ("spam",), ("negative",), ("complaint",)])
    assert [u for u, _, _ in out] == ["pusdatin", None, "humas", "linjamsos"]
    assert calls == [["lansia", "pkh"]]


def test_a_higher_priority_unit_wins_when_keywords_of_several_units_match() -> None:
    from classifiers.base import AccountRules, UnitRules
    from classifiers.router import Router

    rules = {"kemensos": AccountRules("kemensos", "humas", (
        UnitRules("linjamsos", ("pkh",)), UnitRules("itjen", ("potongan",), priority=1), UnitRules("humas", ())))}
    router = Router(rules)
    text = "pendamping minta potongan 50rb dari PKH saya"
    assert router.route("kemensos", text, ("complaint",), {"linjamsos": 0.9, "itjen": 0.1}) == ("itjen", "rule")
    assert router.route("kemensos", "PKH saya belum cair", ("complaint",)) == ("linjamsos", "rule")


def test_a_confident_model_for_a_higher_priority_unit_outranks_a_keyword() -> None:
    rules = {"kemensos": AccountRules("kemensos", "humas", (
        UnitRules("linjamsos", ("pkh",)), UnitRules("pfm", ("bpnt",)),
        UnitRules("itjen", ("pungli",), priority=1), UnitRules("humas", ())))}
    text = "pendamping minta 50rb tiap pencairan PKH"
    levy = {"itjen": 0.85, "linjamsos": 0.15}
    assert Router(rules).route("kemensos", text, ("complaint",), levy) == ("linjamsos", "rule")  # off by default
    router = Router(rules, outrank_at=0.8)
    assert router.route("kemensos", text, ("complaint",), levy) == ("itjen", "model")
    # not confident enough: the keyword wins
    assert router.route("kemensos", text, ("complaint",), {"itjen": 0.6, "linjamsos": 0.4}) == ("linjamsos", "rule")
    # a confident model for a unit of the same priority never beats a keyword
    assert router.route("kemensos", text, ("complaint",), {"pfm": 0.95}) == ("linjamsos", "rule")
    # negative only still goes to the default unit
    assert router.route("kemensos", text, ("negative",), levy) == ("humas", "default")


def test_the_unit_floor_is_the_highest_level_that_costs_no_held_out_accuracy() -> None:
    """An unsure ticket is better off with the media team (who forward it) than with a specialist
    (who bounces it), so among floors that route held-out records equally well the highest wins."""
    from classifiers.dataset import Record
    from classifiers.training import _floor_search
    from tests.test_classifier_pipeline import RULES

    def rec(unit: str) -> Record:
        return Record("h", "kemensos", "comment", "uang bantuan belum masuk", ("complaint",), unit, "id")

    records = [rec("linjamsos")] * 10 + [rec("humas"), rec("pfm"), rec("pfm")]
    probs = ([{"linjamsos": 0.9, "humas": 0.1}] * 10
             + [{"rehsos": 0.25, "humas": 0.2}, {"pfm": 0.28, "humas": 0.2}, {"pfm": 0.45, "humas": 0.2}])
    floor, table = _floor_search(RULES, records, probs, outrank_at=None)
    assert table["0.0"] == table["0.4"] > table["0.5"]
    assert floor == 0.4
