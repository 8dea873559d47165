"""routing.yaml is checked at start-up; a bad file names the key, its line and the fix."""

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_routing, load_settings, parse_routing

ROUTING = Path(__file__).resolve().parents[1] / "routing.yaml"


def good_text() -> str:
    return ROUTING.read_text(encoding="utf-8")


def test_shipped_routing_loads_into_typed_objects() -> None:
    routing = load_routing(ROUTING)
    assert set(routing.accounts) == {"kemensos", "kemendag"}
    kemensos = routing.accounts["kemensos"]
    assert set(kemensos.units) == {"linjamsos", "pfm", "rehsos", "dayasos", "pusdatin", "itjen", "humas"}
    assert set(routing.accounts["kemendag"].units) == {"pdn", "pktn", "daglu", "pen", "bappebti", "itjen", "humas"}
    assert kemensos.default_unit == "humas"
    assert routing.deadline.working_days == 3
    assert routing.timezone == "Asia/Jakarta"
    rules = routing.account_rules()["kemensos"]
    assert "pkh" in next(u for u in rules.units if u.unit == "linjamsos").keywords


def test_every_problem_is_reported_with_its_line_and_fix() -> None:
    text = good_text().replace("chat_id: -1001000000102", "chat_id: abc", 1)
    text = text.replace("  working_days: 3\n", "  working_days: 3\n  workin_hours_typo: 1\n", 1)
    with pytest.raises(ConfigError) as caught:
        parse_routing(text, "routing.yaml")
    message = str(caught.value)
    bad_chat_line = text.splitlines().index("        chat_id: abc") + 1
    typo_line = text.splitlines().index("  workin_hours_typo: 1") + 1
    assert f"line {bad_chat_line}: accounts.kemensos.units.pfm.chat_id" in message
    assert "write a whole number" in message
    assert f"line {typo_line}: deadline.workin_hours_typo" in message
    assert "check its spelling or remove it" in message


def test_default_unit_must_exist() -> None:
    text = good_text().replace("default_unit: humas", "default_unit: hummas", 1)
    with pytest.raises(ConfigError, match="default_unit 'hummas' is not one of this account's units"):
        parse_routing(text)


def test_missing_section_and_broken_yaml() -> None:
    with pytest.raises(ConfigError, match="supervisor: Field required — add this key"):
        parse_routing("media_team: {chat_id: -1}\naccounts: {}\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        parse_routing("accounts:\n  - [\n")


def test_two_units_cannot_share_a_group() -> None:
    text = good_text().replace("chat_id: -1001000000102", "chat_id: -1001000000101", 1)
    with pytest.raises(ConfigError, match="pfm.chat_id: the same group as kemensos.linjamsos"):
        parse_routing(text)


def test_settings_read_secrets_from_the_environment_and_never_print_them(tmp_path: Path) -> None:
    env = {"TRIAGE_CONFIG": str(ROUTING), "TRIAGE_DB": str(tmp_path / "t.db"),
           "TELEGRAM_BOT_TOKEN": "123:SECRET", "INSTAGRAM_TOKEN_KEMENSOS": "IGSECRET"}
    settings = load_settings(env)
    assert settings.instagram_token("kemensos") == "IGSECRET"
    assert "SECRET" not in repr(settings)
    with pytest.raises(ConfigError, match="set the environment variable INSTAGRAM_TOKEN_KEMENDAG"):
        settings.instagram_token("kemendag")


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROUTING)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "routing.yaml"
    bad.write_text(good_text().replace("token_env: INSTAGRAM_TOKEN_KEMENSOS", "token_env: lower-case"), encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "accounts.kemensos.token_env" in err and "line " in err
