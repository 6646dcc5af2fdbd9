"""The routing table (issue 26): which rule a number takes, and what a table given as text (the CLI's
file, SMS_ROUTES, PUT /api/routes's rules) must be: every problem named by its field, never a crash."""
import json

import pytest

from sms.domain.errors import ValidationFailed
from sms.domain.routing import (
    MAX_RULES,
    MAX_TABLE_CHARS,
    MAX_TEXT_CHARS,
    NO_ROUTE,
    RoutingTable,
    Rule,
    parse_rules,
    parse_table,
    region_of,
    table_data,
    table_text,
)

KNOWN = ["acs-au", "twilio", "twilio-us", "console"]
EXAMPLE = [{"match": "AU", "providers": ["acs-au", "twilio"], "sender": "+61400000000"},
           {"match": "+1", "providers": ["twilio-us"]}, {"match": "*", "providers": ["twilio"]}]


def problems(given, known=KNOWN) -> dict[str, str]:
    """The field each error names, and its code: what the table given breaks."""
    with pytest.raises(ValidationFailed) as refused:
        parse_table(given if isinstance(given, str) else json.dumps(given), known)
    for error in refused.value.field_errors:
        assert error.message.startswith(f"{error.field_name}: ") or not error.field_name, error
    return {e.field_name: e.error_code for e in refused.value.field_errors}


# -- matching ------------------------------------------------------------------------------------


def test_the_first_rule_that_matches_wins_in_table_order():
    table = parse_table(json.dumps(EXAMPLE), KNOWN)
    assert table.route_for("+61412000001") == Rule("AU", ("acs-au", "twilio"), "+61400000000")
    assert table.route_for("+12025550123") == Rule("+1", ("twilio-us",))
    assert table.route_for("+447700900123") == Rule("*", ("twilio",))
    prefix_first = RoutingTable((Rule("+614", ("twilio",)), Rule("AU", ("acs-au",))))
    assert prefix_first.route_for("+61412000001").providers == ("twilio",)  # a mobile: the prefix came first
    assert prefix_first.route_for("+61290000000").providers == ("acs-au",)  # a Sydney landline: the country


def test_a_country_is_the_number_s_own_region_not_its_calling_code():
    """+61 8 9164 is Christmas Island's (CX), which shares Australia's +61: an AU rule does not take it, a +61 prefix does."""
    assert region_of("+61891640000") == "CX" and region_of("+61412000001") == "AU"
    table = RoutingTable((Rule("AU", ("acs-au",)), Rule("+61", ("twilio",))))
    assert table.route_for("+61891640000").providers == ("twilio",)
    assert region_of("+999") is None and RoutingTable((Rule("AU", ("acs-au",)),)).route_for("+999") is None


def test_no_rule_matching_is_none_and_the_refusal_names_no_route():
    table = RoutingTable((Rule("AU", ("acs-au",)),))
    assert table.route_for("+12025550123") is None
    assert "no_route" in NO_ROUTE
    assert RoutingTable.through("console").route_for("+12025550123") == Rule("*", ("console",))


# -- parsing -------------------------------------------------------------------------------------


def test_a_table_round_trips_through_its_text():
    table = parse_table(json.dumps(EXAMPLE, indent=2), KNOWN)
    assert table.rules == (Rule("AU", ("acs-au", "twilio"), "+61400000000"), Rule("+1", ("twilio-us",)), Rule("*", ("twilio",)))
    assert json.loads(table_text(table)) == EXAMPLE == table_data(table)  # no sender: left out
    assert parse_table(table_text(table), KNOWN) == table
    assert " " not in table_text(table) and table_text(table).isascii()


def test_the_text_may_be_the_rules_or_an_object_holding_them_as_get_answers():
    answer = {"source": "licensee", "rules": EXAMPLE}
    assert parse_table(json.dumps(answer), KNOWN) == parse_table(json.dumps(EXAMPLE), KNOWN)
    assert parse_rules({"Rules": EXAMPLE}, KNOWN) == parse_rules(EXAMPLE, KNOWN)


def test_names_are_read_in_any_case_and_values_are_tidied():
    table = parse_rules([{"Match": " au ", "PROVIDERS": ["twilio"], "Sender": " Clinic 1 "}, {"match": "*", "providers": ["twilio"]}],
                        KNOWN)
    assert table.rules[0] == Rule("AU", ("twilio",), "Clinic 1")
    assert parse_rules([{"match": "*", "providers": ["console"], "sender": None}], KNOWN).rules[0].sender is None


def test_without_known_providers_any_name_is_taken():
    """A table read back from storage: the deployment's providers may have changed since it was saved."""
    assert parse_table(json.dumps([{"match": "*", "providers": ["gone-now"]}]), None).rules[0].providers == ("gone-now",)


@pytest.mark.parametrize("rule, field, code", [
    ({"match": "XX", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),  # not a region libphonenumber knows
    ({"match": "AUS", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),
    ({"match": "61", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),
    ({"match": "+", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),
    ({"match": "+0412", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),  # no country code starts with 0
    ({"match": "+1234567890123456", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),  # 16 digits
    ({"match": "+61 4", "providers": ["twilio"]}, "Rules[0].Match", "InvalidValue"),
    ({"match": "", "providers": ["twilio"]}, "Rules[0].Match", "NotEmpty"),
    ({"providers": ["twilio"]}, "Rules[0].Match", "NotEmpty"),
    ({"match": 61, "providers": ["twilio"]}, "Rules[0].Match", "InvalidType"),
    ({"match": "AU"}, "Rules[0].Providers", "NotEmpty"),
    ({"match": "AU", "providers": []}, "Rules[0].Providers", "NotEmpty"),
    ({"match": "AU", "providers": "twilio"}, "Rules[0].Providers", "InvalidType"),
    ({"match": "AU", "providers": ["twilio", 7]}, "Rules[0].Providers[1]", "InvalidType"),
    ({"match": "AU", "providers": ["twilio", ""]}, "Rules[0].Providers[1]", "NotEmpty"),
    ({"match": "AU", "providers": ["twilio", "vonage"]}, "Rules[0].Providers[1]", "UnknownProvider"),
    ({"match": "AU", "providers": ["twilio", "acs-au", "twilio"]}, "Rules[0].Providers[2]", "Duplicate"),
    ({"match": "AU", "providers": ["twilio"] * 11}, "Rules[0].Providers", "MaxCount"),
    ({"match": "AU", "providers": ["twilio"], "sender": "0400000000"}, "Rules[0].Sender", "InvalidValue"),  # neither
    ({"match": "AU", "providers": ["twilio"], "sender": "+61 400 000 000"}, "Rules[0].Sender", "InvalidValue"),
    ({"match": "AU", "providers": ["twilio"], "sender": "ClinicWestern"}, "Rules[0].Sender", "InvalidValue"),  # 12 characters
    ({"match": "AU", "providers": ["twilio"], "sender": "Clinic-1"}, "Rules[0].Sender", "InvalidValue"),
    ({"match": "AU", "providers": ["twilio"], "sender": "Klinik\u00e9"}, "Rules[0].Sender", "InvalidValue"),  # not ASCII
    ({"match": "AU", "providers": ["twilio"], "sender": "12345"}, "Rules[0].Sender", "InvalidValue"),  # no letter: a short code
    ({"match": "AU", "providers": ["twilio"], "sender": "  "}, "Rules[0].Sender", "NotEmpty"),
    ({"match": "AU", "providers": ["twilio"], "sender": ["+61400000000"]}, "Rules[0].Sender", "InvalidType"),
    ({"match": "AU", "providers": ["twilio"], "provider": "acs-au"}, "Rules[0].provider", "UnknownField"),  # a typo is not ignored
    ("AU", "Rules[0]", "InvalidType"),
    (None, "Rules[0]", "InvalidType"),
])
def test_each_mistake_in_a_rule_is_named(rule, field, code):
    assert problems([rule, {"match": "*", "providers": ["twilio"]}]) == {field: code}


@pytest.mark.parametrize("sender", ["+61400000000", "+12025550123", "Clinic", "Clinic 1", "A", "ABCDEFGHIJK", "1stClinic"])
def test_senders_a_recipient_can_see(sender):
    assert parse_rules([{"match": "*", "providers": ["twilio"], "sender": sender}], KNOWN).rules[0].sender == sender


def test_every_problem_of_every_rule_is_named_at_once():
    table = [{"match": "XX", "providers": ["vonage"], "sender": "+0"}, {"match": "US", "providers": []}]
    assert problems(table) == {"Rules[0].Match": "InvalidValue", "Rules[0].Providers[0]": "UnknownProvider",
                               "Rules[0].Sender": "InvalidValue", "Rules[1].Providers": "NotEmpty"}


def test_an_unknown_provider_s_error_lists_the_deployment_s_providers():
    with pytest.raises(ValidationFailed) as refused:
        parse_rules([{"match": "*", "providers": ["acs"]}], ["console", "twilio-us"])
    assert refused.value.field_errors[0].message == ("Rules[0].Providers[0]: 'acs' is not a provider of this deployment "
                                                     "(its providers: console, twilio-us)")


@pytest.mark.parametrize("rules, field", [
    ([{"match": "*", "providers": ["twilio"]}, {"match": "AU", "providers": ["acs-au"]}], "Rules[1]"),  # after everything
    ([{"match": "AU", "providers": ["twilio"]}, {"match": "au", "providers": ["acs-au"]}], "Rules[1]"),  # the same match
    ([{"match": "+61", "providers": ["twilio"]}, {"match": "+614", "providers": ["acs-au"]}], "Rules[1]"),  # a longer prefix after
    ([{"match": "+61", "providers": ["twilio"]}, {"match": "AU", "providers": ["acs-au"]}], "Rules[1]"),  # every AU number is +61
    ([{"match": "+1", "providers": ["twilio"]}, {"match": "CA", "providers": ["acs-au"]}], "Rules[1]"),
])
def test_a_rule_that_can_never_match_is_refused_as_the_mistake_it_is(rules, field):
    assert problems(rules) == {field: "Unreachable"}


def test_rules_that_look_alike_but_can_match_are_kept():
    for rules in ([{"match": "+614", "providers": ["twilio"]}, {"match": "+61", "providers": ["acs-au"]}],
                  [{"match": "AU", "providers": ["twilio"]}, {"match": "+61", "providers": ["acs-au"]}],  # CX and CC numbers
                  [{"match": "+1", "providers": ["twilio"]}, {"match": "AU", "providers": ["acs-au"]}]):
        assert len(parse_rules(rules, KNOWN).rules) == 2


def test_a_table_holds_1_to_max_rules():
    assert problems([]) == {"Rules": "NotEmpty"}
    assert problems({"rules": None}) == {"Rules": "NotEmpty"}
    many = [{"match": f"+{n}", "providers": ["twilio"]} for n in range(10_000, 10_000 + MAX_RULES)]
    assert len(parse_rules(many, KNOWN).rules) == MAX_RULES
    assert problems(many + [{"match": "*", "providers": ["twilio"]}]) == {"Rules": "MaxCount"}


def test_a_table_too_long_to_store_is_refused():
    """Stored as its text in one string property: Azure's 64 KiB (sms/storage/limits.py). 200 rules of ten
    long provider names each are past it; the message says how long it is."""
    names = [f"provider-{'x' * 50}-{i}" for i in range(10)]
    long = [{"match": f"+{n}", "providers": names, "sender": "+61400000000"} for n in range(10_000, 10_000 + MAX_RULES)]
    with pytest.raises(ValidationFailed) as refused:
        parse_rules(long, names)
    [error] = refused.value.field_errors
    assert (error.field_name, error.error_code) == ("Rules", "MaxLength") and f"at most {MAX_TABLE_CHARS}" in error.message


def test_the_stored_text_fits_azure_s_string_property():
    from sms.storage.limits import MAX_STRING_BYTES

    assert 2 * MAX_TABLE_CHARS <= MAX_STRING_BYTES  # ASCII text, two bytes a character as UTF-16


@pytest.mark.parametrize("text, code", [
    ("", "NotEmpty"),
    ("   ", "NotEmpty"),
    ("[{", "SerializationException"),
    ("[" * 100_000 + "]" * 100_000, "SerializationException"),  # deeper than json reads
    ('[{"match": "*", "providers": ["twilio"], "sender": ' + "9" * 5000 + "}]", "SerializationException"),  # past int()'s digits
    ("x" * (MAX_TEXT_CHARS + 1), "MaxLength"),
    ('"AU"', "InvalidType"),
    ("7", "InvalidType"),
    ('{"match": "AU"}', "NotEmpty"),  # an object without rules
    ('{"rules": {"match": "AU"}}', "InvalidType"),
])
def test_text_that_is_no_table_at_all_is_refused_in_one_error(text, code):
    assert list(problems(text).values()) == [code]


def test_hostile_values_are_named_without_quoting_them_raw():
    """Lone surrogates (JSON can escape them), controls and huge strings: the message stays printable ASCII
    and short, so a terminal, a log or an HTTP answer can carry it."""
    rules = [{"match": "\ud800A", "providers": ["\udfff", "x" * 100_000], "sender": "\x1b[31m"}, {"match": "*", "providers": ["twilio"]},
             {"\ud800": 1, "match": "+1", "providers": ["twilio"]}]
    with pytest.raises(ValidationFailed) as refused:
        parse_table(json.dumps(rules), KNOWN)
    for error in refused.value.field_errors:
        assert error.message.isascii() and error.message.isprintable() and len(error.message) < 300, error
    assert {e.field_name for e in refused.value.field_errors} >= {"Rules[0].Match", "Rules[0].Providers[0]", "Rules[0].Providers[1]",
                                                                  "Rules[0].Sender"}
