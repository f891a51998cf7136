"""Thai dates and digits, as official documents and Thai e-mail write them.

pythainlp does the calendar and digit work (Buddhist Era years, Thai month
and weekday names, Thai digits); this module only names the forms the office
uses, so templates say `{{ when | thai_date }}` rather than format strings.
"""

from __future__ import annotations

from datetime import date, datetime

from pythainlp.util import arabic_digit_to_thai_digit, thai_digit_to_arabic_digit, thai_strftime

FORMATS = {
    "date": "%-d %B %Y",
    "weekday": "%Aที่ %-d %B %Y",
    "time": "%H.%M น.",
    "datetime": "%Aที่ %-d %B %Y เวลา %H.%M น.",
    "short": "%-d %b %y",
}


def thai_date(value: date | datetime, form: str = "date", thai_digits: bool = False) -> str:
    """A date in the Buddhist Era, e.g. `๒๔ พฤศจิกายน ๒๕๖๙` or `วันอังคารที่ 24 พฤศจิกายน 2569`."""
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    return thai_strftime(moment, FORMATS[form], thaidigit=thai_digits)


def thai_digits(value: object) -> str:
    """Arabic digits in a text turned into Thai digits (๐–๙)."""
    return arabic_digit_to_thai_digit(str(value))


def arabic_digits(value: object) -> str:
    """Thai digits in a text turned into Arabic ones, so "ข้อ ๒" and "ข้อ 2" read the same."""
    return thai_digit_to_arabic_digit(str(value))


def digits(value: object, thai: bool) -> str:
    """Digits as the office writes them: Thai when it chose Thai digits, else as given.

    Templates pass the office's choice (`{{ n | digits(office.thai_digits) }}`), so one
    template serves offices of either habit.
    """
    return thai_digits(value) if thai else str(value)


def english_date(value: date | datetime, form: str = "date") -> str:
    """The same forms in English with Common Era years, for offices that want English."""
    formats = {"date": "%-d %B %Y", "weekday": "%A %-d %B %Y", "time": "%H:%M", "datetime": "%A %-d %B %Y at %H:%M", "short": "%-d %b %Y"}
    return value.strftime(formats[form])
