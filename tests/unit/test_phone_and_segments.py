import pytest

from sms.domain import segments
from sms.domain.phone import InvalidNumber, mask, mask_numbers, to_e164


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


@pytest.mark.parametrize("raw", ["+61 412 345 999 call me", "+61 412 345 9990 0", "0412 345 999 000", "+999 412 345 999",
                                 "412345999 please", "61412345999" * 30])
def test_an_invalid_number_is_quoted_masked(raw):
    """The message goes to the client, and from any exception that carries it into a log."""
    with pytest.raises(InvalidNumber) as caught:
        to_e164(raw, "AU")
    message = str(caught.value)
    assert "".join(c for c in message if c.isdigit()).count("412345") == 0
    assert len(message) < 120  # a 330-digit input is not quoted whole


@pytest.mark.parametrize("text, masked", [
    ("+61 412 345 999 call me", "+61 4** *** *99 call me"),
    ("+61412345678", "+614******78"),  # as mask() writes an E.164 number
    ("ring 0412-345-999 or 123456", "ring 041*-***-*99 or ****56"),
    ("(02) 9876 5432", "(02) 9*** **32"),
    ("line 353, in raw_decode; 4300 digits", "line 353, in raw_decode; 4300 digits"),  # short runs are not numbers
    ("", ""),
])
def test_mask_numbers_hides_all_but_a_few_digits_of_every_long_digit_run(text, masked):
    assert mask_numbers(text) == masked


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


def test_the_gsm_tables_agree_with_the_gsm0338_codec_on_every_bmp_character():
    """Every character the codec encodes in one septet is basic, in two is an extension, else not GSM-7.

    One deliberate difference: ESC (0x1B) itself. The codec passes it through, but in a body it
    would start an extension pair, so it cannot be sent as GSM-7 text.
    """
    import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

    from sms.domain.segments import _GSM7_BASIC, _GSM7_EXTENSION

    disagreements = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF or code == 0x1B:
            continue
        char = chr(code)
        try:
            septets = len(char.encode("gsm03.38"))
        except UnicodeEncodeError:
            septets = 0
        ours = 1 if char in _GSM7_BASIC else 2 if char in _GSM7_EXTENSION else 0
        if septets != ours:
            disagreements.append((hex(code), septets, ours))
    assert disagreements == []


@pytest.mark.parametrize("body, encoding, count", [
    ("Hello Привет", "UCS-2", 1),  # one non-GSM character makes the whole body UCS-2
    ("Price: 10€ {promo}", "GSM-7", 1),
    ("x" * 150 + "€" * 6, "GSM-7", 2),  # 150 + 12 septets = 162 > 160
    ("中文" * 35, "UCS-2", 1),
    ("中文" * 35 + "!", "UCS-2", 2),
])
def test_more_segment_cases(body, encoding, count):
    info = segments.count(body)
    assert (info.encoding, info.segments) == (encoding, count)


def test_counting_one_unit_characters_by_arithmetic_agrees_with_packing_them_one_by_one():
    """count() skips the per-character packing when every character is one unit wide; across the
    boundaries, mixed with two-unit characters (GSM escapes, emoji), both ways give the same answer."""
    import random

    from sms.domain.segments import _GSM7_BASIC, _GSM7_EXTENSION, _pack

    def packed(body: str) -> tuple[str, int, int]:
        if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in body):
            widths = [2 if c in _GSM7_EXTENSION else 1 for c in body]
            return "GSM-7", _pack(widths, single=160, multi=153), sum(widths)
        widths = [2 if ord(c) > 0xFFFF else 1 for c in body]
        return "UCS-2", _pack(widths, single=70, multi=67), sum(widths)

    pools = [sorted(_GSM7_BASIC), sorted(_GSM7_BASIC | _GSM7_EXTENSION), ["a", "中"], ["a", "😀"], ["é", "€", "ж"]]
    rng = random.Random(17)
    for _ in range(5000):
        pool = rng.choice(pools)
        body = "".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 66, 67, 68, 70, 71, 134, 153, 160, 161, 306, 307, 700])))
        info = segments.count(body)
        assert (info.encoding, info.segments, info.units) == packed(body), body
