import pytest

from sms import segments
from sms.phone import InvalidNumber, mask, to_e164


@pytest.mark.parametrize("raw, region, e164", [
    ("0412 345 678", "AU", "+61412345678"),
    ("+61 (4) 1234-5678", "US", "+61412345678"),
    ("(650) 253-0000", "US", "+16502530000"),
    ("+44 20 7946 0958", "AU", "+442079460958"),
])
def test_numbers_are_normalised_to_e164(raw, region, e164):
    assert to_e164(raw, region) == e164


@pytest.mark.parametrize("raw", ["", "   ", "12", "not a number", "+999 1234 5678", "0412 345"])
def test_invalid_numbers_are_refused_with_a_reason(raw):
    with pytest.raises(InvalidNumber) as caught:
        to_e164(raw, "AU")
    assert str(caught.value)


def test_mask_keeps_only_country_code_and_last_two_digits():
    assert mask("+61412345678") == "+614******78"
    assert "345" not in mask("+61412345678")


@pytest.mark.parametrize("body, encoding, count", [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),  # extension characters take two septets
    ("€" * 81, "GSM-7", 2),
    ("a" + "{" * 76 + "a" * 10, "GSM-7", 2),  # an escape pair is never split across segments
    ("é" * 160, "GSM-7", 1),  # é is in the GSM basic table
    ("ç" * 70, "UCS-2", 1),  # ç is not (only Ç is)
    ("ç" * 71, "UCS-2", 2),
    ("😀" * 35, "UCS-2", 1),  # surrogate pairs take two units
    ("😀" * 36, "UCS-2", 2),
    ("Привет, мир", "UCS-2", 1),
])
def test_segment_counts(body, encoding, count):
    info = segments.count(body)
    assert (info.encoding, info.segments) == (encoding, count)
