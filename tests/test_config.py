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
    assert "write the group's chat id, a negative whole number" in message
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


def _problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_routing(text)
    return str(caught.value)


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize("start, end, digest", [
    ("08.00", "16.00", "07.30"),      # YAML 1.1 would read these as the floats 8.0, 16.0 and 7.3
    ("8.00", "16.30", "7.30"),
    ("08:00", "16:00", "07:30"),      # 16:00 would be the sexagesimal int 960
    ("8:00", "'16.00'", "\"7:30\""),  # 8:00 would be 480
])
def test_times_are_read_as_written_quoted_or_not(start: str, end: str, digest: str) -> None:
    text = good_text().replace('working_hours: {start: "08:00", end: "16:00"}',
                               f"working_hours: {{start: {start}, end: {end}}}")
    text = text.replace('time: "07:30"', f"time: {digest}")
    routing = parse_routing(text)
    hours = routing.deadline.working_hours
    assert (hours.start.hour, hours.start.minute) == (8, 0)
    assert hours.end.hour == 16 and hours.end.minute in (0, 30)
    assert (routing.digest.time.hour, routing.digest.time.minute) == (7, 30)
    routing.calendar()  # the calendar takes them (it refused the misread values before)


@pytest.mark.parametrize("written", ["7.3", "730", "25:00", "7", "pagi"])
def test_a_time_that_cannot_be_read_for_sure_is_refused_with_its_line(written: str) -> None:
    text = good_text().replace('time: "07:30"', f"time: {written}")
    message = _problem(text)
    assert f"line {_line_of(text, 'time: ' + written)}: digest.time" in message
    assert "not a time of day" in message and '"08:00"' in message


def test_an_officer_written_as_a_username_is_told_how_to_find_the_user_id() -> None:
    text = good_text().replace("officers: [7601]", 'officers: ["@budi_itjen"]')
    message = _problem(text)
    assert f"line {_line_of(text, '@budi_itjen')}: accounts.kemensos.units.itjen.officers.0" in message
    assert "positive whole number" in message and "not an @username" in message and "/id" in message
    assert "-1001234567890" not in message


def test_an_unquoted_username_is_explained_not_yamls_jargon() -> None:
    text = good_text().replace("officers: [7601]", "officers: [@budi_itjen]")
    message = _problem(text)
    assert f"line {_line_of(text, '@budi_itjen')}:" in message
    assert "cannot start any token" not in message
    assert "not @usernames" in message and "/id" in message


def test_a_list_without_brackets_gets_an_example() -> None:
    text = good_text().replace("officers: [7601]", "officers: 7601, 7602")
    message = _problem(text)
    assert f"line {_line_of(text, 'officers: 7601, 7602')}: accounts.kemensos.units.itjen.officers" in message
    assert "square brackets, e.g. officers: [7101, 7102]" in message


def test_a_positive_chat_id_for_a_group_and_a_negative_user_id_are_refused() -> None:
    text = good_text().replace("chat_id: -1001000000102", "chat_id: 1001000000102", 1)
    message = _problem(text)
    assert f"line {_line_of(text, 'chat_id: 1001000000102')}: accounts.kemensos.units.pfm.chat_id" in message
    assert "group ids are negative" in message and "/id" in message
    text = good_text().replace("members: [6001]", "members: [-1001000000002]")
    message = _problem(text)
    assert "supervisor.members" in message and "user ids are positive" in message


@pytest.mark.parametrize("shift", [-2, -1, 1, 2])
def test_wrong_indentation_is_reported_at_the_line_to_fix(shift: int) -> None:
    lines = good_text().splitlines()
    number = _line_of(good_text(), "officers: [7101, 7102]")  # inside a unit, between two keys
    line = lines[number - 1]
    lines[number - 1] = line[-shift:] if shift < 0 else " " * shift + line
    message = _problem("\n".join(lines) + "\n")
    assert f"line {number}" in message and "wrong indentation" in message, message
    assert "expected <block end>" not in message


def test_classify_refuses_an_unknown_account(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    monkeypatch.setenv("TRIAGE_CONFIG", str(ROUTING))
    monkeypatch.setattr("sys.stdin", io.StringIO(
        json.dumps({"id": 1, "account": "kemenkes", "channel": "comment", "text": "vaksin kapan?"}) + "\n"))
    assert main(["classify", "--backend", "ngram"]) == 1
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert "unit" not in record and "unknown account 'kemenkes'" in record["error"]
    assert "kemensos, kemendag" in captured.err
