"""Simulator numbers (sms/domain/simulated.py): numbers regulators reserve for fiction, each answering a
send the way its last digit says."""
import json
import re

import pytest

from sms.domain.model import Status
from sms.domain.phone import to_e164
from sms.domain.simulated import ACMA_MOBILES, Behaviour, simulated

BY_DIGIT = {"0": Behaviour.DELIVERED, "1": Behaviour.UNDELIVERED, "2": Behaviour.FAILED, "3": Behaviour.NOT_TAKEN,
            "4": Behaviour.AMBIGUOUS, "5": Behaviour.NO_RECEIPT, "6": Behaviour.DELIVERED, "7": Behaviour.DELIVERED,
            "8": Behaviour.DELIVERED, "9": Behaviour.DELIVERED}


@pytest.mark.parametrize("digit, behaviour", BY_DIGIT.items())
def test_the_last_digit_picks_the_behaviour_in_every_list(digit, behaviour):
    assert simulated(f"+1202555010{digit}") is behaviour  # North America, 555-0100 to 555-0199
    assert simulated(f"+6125550123{digit}") is behaviour  # ACMA's geographic (02) 5550 xxxx
    assert simulated(f"+6187010999{digit}") is behaviour  # ACMA's geographic (08) 7010 xxxx
    mobiles = [n for n in ACMA_MOBILES if n.endswith(digit)]
    assert mobiles and all(simulated(n) is behaviour for n in mobiles)  # every digit has an ACMA mobile


def test_acma_publishes_thirty_mobile_numbers_not_a_range():
    """ACMA's list is 30 numbers between 0491 570 006 and 0491 579 760; the numbers between them are
    ordinary allocatable stock (a real person's phone), and stay ordinary numbers."""
    assert len(ACMA_MOBILES) == 30
    assert {"+61491570006", "+61491570156", "+61491579760", "+61491579455"} <= ACMA_MOBILES
    for ordinary in ("+61491570005", "+61491570007", "+61491570155", "+61491570160", "+61491575000", "+61491579999",
                     "+61491571000", "+61491580156", "+61481570156"):
        assert simulated(ordinary) is None, ordinary


@pytest.mark.parametrize("area", "2378")
@pytest.mark.parametrize("block", ["5550", "7010"])
def test_acma_geographic_blocks_from_first_to_last(area, block):
    assert simulated(f"+61{area}{block}0000") is Behaviour.DELIVERED
    assert simulated(f"+61{area}{block}9999") is Behaviour.DELIVERED
    assert simulated(f"+61{area}{block}5555") is Behaviour.NO_RECEIPT


@pytest.mark.parametrize("ordinary", [
    "+61255490000", "+61255499999", "+61255510000",  # just outside (02) 5550 xxxx
    "+61270099999", "+61270110000",  # just outside (02) 7010 xxxx
    "+61455500100", "+61555500100", "+61955500100",  # 5550 after an area code ACMA does not name
    "+6125550012", "+612555001234",  # a digit short, a digit over
])
def test_numbers_just_outside_acmas_geographic_blocks_are_ordinary(ordinary):
    assert simulated(ordinary) is None


def test_north_american_fiction_is_555_0100_to_0199_in_any_geographic_area_code():
    for area in ("202", "212", "415", "416", "604", "787"):  # Washington, New York, San Francisco, Toronto, Vancouver, Puerto Rico
        assert simulated(f"+1{area}5550100") is Behaviour.DELIVERED
        assert simulated(f"+1{area}5550199") is Behaviour.DELIVERED
    for ordinary in ("+12025550099", "+12025550200", "+12025550000", "+12025551234", "+12025560100", "+120255501000"):
        assert simulated(ordinary) is None, ordinary


@pytest.mark.parametrize("toll_free_or_premium", ["+18005550100", "+18885550150", "+19005550100", "+15005550100"])
def test_555_01xx_in_a_non_geographic_area_code_is_ordinary(toll_free_or_premium):
    """NANPA's reservation is of 555-0100..0199 as a line number in a geographic area code; an 8YY
    toll-free, 900 premium or 5XX personal number with those digits is assignable like any other."""
    assert simulated(toll_free_or_premium) is None


def test_other_countries_and_ordinary_numbers_are_not_simulated():
    for ordinary in ("+61412345678", "+447700900123", "+6425550100", "+12025550100 ", "61491570156", ""):
        assert simulated(ordinary) is None, repr(ordinary)


def test_what_each_behaviour_means_for_the_provider():
    taken = {b for b in Behaviour if b.taken}
    assert taken == {Behaviour.DELIVERED, Behaviour.UNDELIVERED, Behaviour.AMBIGUOUS, Behaviour.NO_RECEIPT}
    assert {b: b.receipt for b in Behaviour if b.receipt} == {Behaviour.DELIVERED: Status.DELIVERED,
                                                               Behaviour.UNDELIVERED: Status.UNDELIVERED}
    assert {b for b in Behaviour if b.code} == {Behaviour.UNDELIVERED, Behaviour.FAILED, Behaviour.NOT_TAKEN, Behaviour.AMBIGUOUS}


def test_every_simulator_number_is_one_a_send_accepts():
    """The gateway validates every number with libphonenumber at accept (sms/domain/phone.py): a
    simulator number it refused could never be tried."""
    examples = set(ACMA_MOBILES)
    examples |= {f"+61{area}{block}{line}" for area in "2378" for block in ("5550", "7010") for line in ("0000", "0105", "9999")}
    examples |= {f"+1{area}55501{line:02d}" for area in ("202", "416") for line in range(100)}
    for number in examples:
        assert to_e164(number, "AU") == number
        assert simulated(number) is not None
    # As a person in Australia writes them, too.
    assert simulated(to_e164("0491 570 156", "AU")) is Behaviour.DELIVERED
    assert simulated(to_e164("(02) 5550 0101", "AU")) is Behaviour.UNDELIVERED


# -- SMS_SIMULATOR: on unless set off --------------------------------------------------------------

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_the_simulator_is_on_unless_set_off():
    from sms.config import Settings

    assert Settings.from_env(STORAGE).simulator is True
    assert Settings.from_env({**STORAGE, "SMS_SIMULATOR": ""}).simulator is True
    for off in ("off", " OFF ", "false", "0", "no"):
        assert Settings.from_env({**STORAGE, "SMS_SIMULATOR": off}).simulator is False, off
    for on in ("on", "true", "1", "yes"):
        assert Settings.from_env({**STORAGE, "SMS_SIMULATOR": on}).simulator is True, on


def test_a_simulator_setting_that_is_neither_on_nor_off_stops_the_app():
    from sms.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="SMS_SIMULATOR='sometimes' is not true or false"):
        Settings.from_env({**STORAGE, "SMS_SIMULATOR": "sometimes"})


# -- README's *Simulator numbers* says what the code does ------------------------------------------

def readme_part() -> str:
    from sms.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    return readme.split("### Simulator numbers\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def readme_table() -> list[tuple[set[str], str, list[str], list[str]]]:
    """Each row: (its last digits, the behaviour, the codes it names, the numbers to try)."""
    rows = []
    for line in readme_part().splitlines():
        if not line.startswith("| ") or line.startswith(("| Last digit", "| ---")):
            continue
        digits, does, _, numbers = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append((set(re.findall(r"\d", digits)), re.match(r"`(\w+)`", does).group(1),
                     re.findall(r"`([A-Z_]+)`", does), re.findall(r"`([^`]+)`", numbers)))
    return rows


def test_every_number_readme_lists_behaves_as_readme_says():
    rows = readme_table()
    assert sorted(d for digits, *_ in rows for d in digits) == list("0123456789")  # each digit in one row
    assert [behaviour for _, behaviour, *_ in rows] == [b.value for b in Behaviour]  # each behaviour, in order
    for digits, behaviour, codes, numbers in rows:
        assert codes == ([Behaviour(behaviour).code] if Behaviour(behaviour).code else []), behaviour
        assert numbers, behaviour
        for number in numbers:
            e164 = to_e164(number, "AU")  # as a send with make run's SMS_DEFAULT_REGION reads it
            assert simulated(e164) is Behaviour(behaviour) and e164[-1] in digits, number


def test_readme_lists_acmas_thirty_mobiles():
    listed = {"+61" + n.replace(" ", "")[1:] for n in re.findall(r"0491 57\d \d{3}", readme_part())}
    assert listed == ACMA_MOBILES


def test_readmes_curl_example_tries_every_way_a_send_can_go():
    [payload] = re.findall(r"-d '(\{.*\})'", readme_part())
    numbers = [to["phoneNumber"] for to in json.loads(payload)["smsModel"]["to"]]
    assert {simulated(to_e164(n, "AU")) for n in numbers} == set(Behaviour)
