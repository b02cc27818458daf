"""ROC (民國) dates as customers type them (DESIGN §3, §6), as a specification table.

"Today" is fixed at 民國113年3月15日 (2024-03-15) throughout.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcore.identity import (
    RocDateError,
    RocDateProblem,
    format_roc_date,
    parse_roc_date,
    roc_year,
)

TODAY = datetime.date(2024, 3, 15)
D = datetime.date

ACCEPTED = [
    # typed, date, id
    ("761205", D(1987, 12, 5), "six-digits"),
    ("1120315", D(2023, 3, 15), "seven-digits"),
    ("0761205", D(1987, 12, 5), "seven-digits-leading-zero"),
    ("990101", D(2010, 1, 1), "six-digits-largest-year"),
    ("1000101", D(2011, 1, 1), "seven-digits-first-3-digit-year"),
    ("010101", D(1912, 1, 1), "first-day-of-roc-1"),
    ("１１２０３１５", D(2023, 3, 15), "full-width-digits"),
    ("  761205 \n", D(1987, 12, 5), "surrounding-whitespace"),
    ("\u3000761205\u3000", D(1987, 12, 5), "ideographic-spaces"),
    ("890229", D(2000, 2, 29), "leap-day-roc-89-is-2000"),
    ("1090229", D(2020, 2, 29), "leap-day-roc-109"),
    ("1130315", TODAY, "today-exactly"),
    ("1130314", D(2024, 3, 14), "yesterday"),
    ("76/12/05", D(1987, 12, 5), "slashes"),
    ("112-3-15", D(2023, 3, 15), "dashes-one-digit-month"),
    ("76.12.5", D(1987, 12, 5), "dots-one-digit-day"),
    ("076/12/05", D(1987, 12, 5), "slashes-padded-year"),
    ("1/1/1", D(1912, 1, 1), "slashes-one-digit-everything"),
    ("76/12-05", D(1987, 12, 5), "mixed-separators"),
    ("１１２／３／１５", D(2023, 3, 15), "full-width-slashes"),
    ("89/2/29", D(2000, 2, 29), "leap-day-with-slashes"),
]


@pytest.mark.parametrize(
    ("typed", "expected"), [row[:2] for row in ACCEPTED], ids=[row[2] for row in ACCEPTED]
)
def test_accepted(typed: str, expected: datetime.date) -> None:
    assert parse_roc_date(typed, today=TODAY) == expected


REJECTED = [
    # typed, problem, id
    ("", RocDateProblem.EMPTY, "empty"),
    ("   ", RocDateProblem.EMPTY, "spaces-only"),
    ("\u3000", RocDateProblem.EMPTY, "ideographic-space-only"),
    ("76120a", RocDateProblem.NOT_DIGITS, "letter"),
    ("七六一二零五", RocDateProblem.NOT_DIGITS, "chinese-numerals"),
    ("76年12月5日", RocDateProblem.NOT_DIGITS, "chinese-date-words"),
    ("٧٦١٢٠٥", RocDateProblem.NOT_DIGITS, "arabic-indic-digits"),
    ("76 12 05", RocDateProblem.NOT_DIGITS, "inner-spaces"),
    ("19871205", RocDateProblem.GREGORIAN, "gregorian-8-digits"),
    ("20000229", RocDateProblem.GREGORIAN, "gregorian-leap-day"),
    ("19870231", RocDateProblem.GREGORIAN, "gregorian-shaped-but-no-such-day"),
    ("21000101", RocDateProblem.GREGORIAN, "gregorian-year-2100"),
    ("1987/12/05", RocDateProblem.GREGORIAN, "gregorian-with-slashes"),
    ("１９８７１２０５", RocDateProblem.GREGORIAN, "gregorian-full-width"),
    ("18991205", RocDateProblem.WRONG_LENGTH, "8-digits-year-1899"),
    ("21010101", RocDateProblem.WRONG_LENGTH, "8-digits-year-2101"),
    ("19871305", RocDateProblem.WRONG_LENGTH, "8-digits-month-13"),
    ("19871200", RocDateProblem.WRONG_LENGTH, "8-digits-day-0"),
    ("76125", RocDateProblem.WRONG_LENGTH, "five-digits"),
    ("761205000", RocDateProblem.WRONG_LENGTH, "nine-digits"),
    ("1", RocDateProblem.WRONG_LENGTH, "one-digit"),
    ("76/12", RocDateProblem.WRONG_LENGTH, "two-parts"),
    ("76/123/05", RocDateProblem.WRONG_LENGTH, "three-digit-month"),
    ("1234/1/1", RocDateProblem.WRONG_LENGTH, "four-digit-year-not-gregorian"),
    ("76//12/05", RocDateProblem.WRONG_LENGTH, "doubled-separator"),
    ("001205", RocDateProblem.YEAR_ZERO, "roc-0-six-digits"),
    ("0001205", RocDateProblem.YEAR_ZERO, "roc-0-seven-digits"),
    ("0/12/05", RocDateProblem.YEAR_ZERO, "roc-0-slashes"),
    ("000229", RocDateProblem.YEAR_ZERO, "roc-0-before-date-check"),
    ("1100230", RocDateProblem.NOT_A_DATE, "february-30"),
    ("900229", RocDateProblem.NOT_A_DATE, "leap-day-roc-90-is-2001"),
    ("1890229", RocDateProblem.NOT_A_DATE, "leap-day-roc-189-is-2100"),
    ("761301", RocDateProblem.NOT_A_DATE, "month-13"),
    ("760001", RocDateProblem.NOT_A_DATE, "month-0"),
    ("761200", RocDateProblem.NOT_A_DATE, "day-0"),
    ("760431", RocDateProblem.NOT_A_DATE, "april-31"),
    ("7612050", RocDateProblem.NOT_A_DATE, "seven-digits-read-as-roc-761"),
    ("76/2/30", RocDateProblem.NOT_A_DATE, "slashes-february-30"),
    ("1130316", RocDateProblem.IN_FUTURE, "tomorrow"),
    ("1131231", RocDateProblem.IN_FUTURE, "later-this-year"),
    ("9991231", RocDateProblem.IN_FUTURE, "largest-roc-year"),
]


@pytest.mark.parametrize(
    ("typed", "problem"), [row[:2] for row in REJECTED], ids=[row[2] for row in REJECTED]
)
def test_rejected(typed: str, problem: RocDateProblem) -> None:
    with pytest.raises(RocDateError) as caught:
        parse_roc_date(typed, today=TODAY)
    assert caught.value.problem is problem


GREGORIAN_HINTS = [
    # typed, the date they probably meant, id
    ("19871205", D(1987, 12, 5), "real-date"),
    ("1987/12/05", D(1987, 12, 5), "real-date-with-slashes"),
    ("19870231", None, "no-such-day"),
]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [row[:2] for row in GREGORIAN_HINTS],
    ids=[row[2] for row in GREGORIAN_HINTS],
)
def test_gregorian_input_carries_what_was_meant(typed: str, meant: datetime.date | None) -> None:
    with pytest.raises(RocDateError) as caught:
        parse_roc_date(typed, today=TODAY)
    assert caught.value.gregorian == meant


@pytest.mark.parametrize(
    "typed",
    [
        "1" * 5000,  # past int()'s 4,300-digit limit
        "１" * 5000,  # full-width, folded to the same by NFKC
        "0" * 4300 + "1",
        "1" * 5000 + "/12/05",
        "76/12/" + "0" * 5000 + "5",
        " " * 40 + "1" * 30 + " " * 40,
    ],
    ids=["5000-digits", "5000-full-width", "4301-digits", "long-year", "long-day", "padded"],
)
def test_a_very_long_number_is_refused_before_it_is_read(typed: str) -> None:
    with pytest.raises(RocDateError) as caught:
        parse_roc_date(typed, today=TODAY)
    assert caught.value.problem is RocDateProblem.WRONG_LENGTH


def test_spaces_around_a_date_are_not_counted_against_its_length() -> None:
    assert parse_roc_date(" " * 100 + "761205" + "\n" * 100, today=TODAY) == D(1987, 12, 5)


def test_error_is_a_value_error_and_does_not_repeat_the_input() -> None:
    # A birth date is personal data; the exception text ends up in logs.
    with pytest.raises(ValueError) as caught:
        parse_roc_date("761305", today=TODAY)
    assert "7613" not in str(caught.value)
    assert str(caught.value) == RocDateProblem.NOT_A_DATE.value


def test_today_must_be_a_date_not_a_datetime() -> None:
    # date > datetime raises in Python, and which day "now" is depends on the time zone.
    with pytest.raises(TypeError):
        parse_roc_date("761205", today=datetime.datetime(2024, 3, 15, 12, 0))


FORMATTED = [
    # date, compact ROC form, ROC year, id
    (D(1987, 12, 5), "761205", 76, "two-digit-year"),
    (D(2023, 3, 15), "1120315", 112, "three-digit-year"),
    (D(2011, 1, 1), "1000101", 100, "first-three-digit-year"),
    (D(2010, 12, 31), "991231", 99, "last-two-digit-year"),
    (D(1912, 1, 1), "010101", 1, "roc-1-padded-to-parse-back"),
    (D(2000, 2, 29), "890229", 89, "leap-day"),
]


@pytest.mark.parametrize(
    ("d", "compact", "year"), [row[:3] for row in FORMATTED], ids=[row[3] for row in FORMATTED]
)
def test_format_and_roc_year(d: datetime.date, compact: str, year: int) -> None:
    assert format_roc_date(d) == compact
    assert roc_year(d) == year


@pytest.mark.parametrize("d", [D(1911, 12, 31), D(1, 1, 1)], ids=["day-before-roc-1", "year-1"])
def test_no_roc_year_before_1912(d: datetime.date) -> None:
    with pytest.raises(ValueError):
        roc_year(d)
    with pytest.raises(ValueError):
        format_roc_date(d)


@given(st.dates(min_value=D(1912, 1, 1), max_value=TODAY))
def test_format_parses_back(d: datetime.date) -> None:
    assert parse_roc_date(format_roc_date(d), today=TODAY) == d


@given(st.dates(min_value=D(1912, 1, 1), max_value=TODAY))
def test_separated_form_parses_back(d: datetime.date) -> None:
    assert parse_roc_date(f"{roc_year(d)}/{d.month}/{d.day}", today=TODAY) == d


def _parses_to_a_past_date_or_says_why(text: str) -> None:
    try:
        result = parse_roc_date(text, today=TODAY)
    except RocDateError as error:
        assert isinstance(error.problem, RocDateProblem)
    else:
        assert D(1912, 1, 1) <= result <= TODAY


@given(st.text(max_size=12))
def test_any_text_parses_to_a_past_date_or_says_why(text: str) -> None:
    _parses_to_a_past_date_or_says_why(text)


@given(st.text(alphabet="0123456789/-. ", max_size=12))
def test_date_like_text_parses_to_a_past_date_or_says_why(text: str) -> None:
    _parses_to_a_past_date_or_says_why(text)
