"""Cell values as people type them into spreadsheets, read into the values fields take.

The rules (the README's "Bring your data" repeats them):

- blank: an empty cell, or one holding only spaces, `-`, `n/a`, `null` or `none`, is no value;
- numbers and money: currency symbols and codes are dropped (`$1,200.50`, `1.200,50 €`, `EUR 1200`); the last
  `.` or `,` followed by one or two digits is the decimal point, other `.` `,` `'` and spaces group thousands
  (`1,234` and `1.234` are one thousand two hundred thirty-four); a symbol or code also gives the currency;
- dates: ISO `2026-03-31` (a time after it is ignored), `2026/03/31`, `31.03.2026`, `31 Mar 2026`,
  `Mar 31, 2026`, and `03/31/2026` read month first unless `day_first` (or the first number is over 12);
- times: ISO 8601 with or without an offset (none means UTC), `2026-03-31 14:30`, or a date alone (midnight UTC);
- booleans: yes/no, true/false, y/n, 1/0, x (a ticked box) and done/open, in any case;
- phone numbers: `tel:` and extensions (`x12`, `ext. 12`) are dropped, the rest keeps digits, `+`, spaces and
  `( ) . - /`;
- lists (tags, emails, phones, names of linked records): values separated by `;`, `,` or `|` (`;` only where a
  value may itself hold a comma: names of linked records).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

BLANKS = {"", "-", "--", "n/a", "na", "null", "none", "#n/a"}
TRUE = {"yes", "y", "true", "t", "1", "x", "done", "on", "✓"}
FALSE = {"no", "n", "false", "f", "0", "open", "off", "to do", "not done"}
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₽": "RUB", "₩": "KRW", "₺": "TRY", "₪": "ILS"}
CURRENCY_CODE = re.compile(r"\b([A-Za-z]{3})\b")
NUMBER_CHARS = re.compile(r"[^0-9.,'\s+-]")
MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[t ].*)?$")
NUMERIC_DATE = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{2}|\d{4})$")
WORDY_DATE = re.compile(
    r"^(?:(\d{1,2})\.?\s+([a-z]+)\.?,?\s+(\d{4})"  # 31 Mar 2026
    r"|([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))$"  # March 31st, 2026
)
EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d+\s*$", re.IGNORECASE)
PHONE_ALLOWED = re.compile(r"[^0-9+ ().\-/]")
SPLIT_LIST = re.compile(r"\s*[;,|]\s*")
SPLIT_NAMES = re.compile(r"\s*[;|]\s*")


class BadValue(ValueError):
    """A cell that cannot be read as what its column needs; the text says what would be."""


def blank(cell: str | None) -> bool:
    if cell is None:
        return True
    stripped = cell.strip()
    return not stripped or (len(stripped) <= 4 and stripped.casefold() in BLANKS)


def text(cell: str) -> str:
    return " ".join(cell.split()) if "\n" not in cell else cell.strip()


def number(cell: str) -> Decimal:
    amount, _ = money(cell)
    return amount


def money(cell: str) -> tuple[Decimal, str | None]:
    """(amount, currency code if the cell names one)."""
    raw = cell.strip()
    named = {code for symbol, code in SYMBOLS.items() if symbol in raw}
    named |= {code.upper() for code in CURRENCY_CODE.findall(raw)}
    if len(named) > 1:
        raise BadValue(f"'{cell}' holds more than one amount ({', '.join(sorted(named))}); keep one")
    currency = next(iter(named), None)
    digits = NUMBER_CHARS.sub("", raw).replace(" ", "").replace("'", "")
    negative = digits.startswith("-") or (raw.startswith("(") and raw.endswith(")"))
    digits = digits.lstrip("+-")
    last = max(digits.rfind("."), digits.rfind(","))
    if last != -1 and 1 <= len(digits) - last - 1 <= 2 and digits.count(digits[last]) == 1:
        whole, fraction = digits[:last], digits[last + 1 :]
    else:
        whole, fraction = digits, ""
    whole = whole.replace(".", "").replace(",", "")
    try:
        if not whole and not fraction:
            raise InvalidOperation
        amount = Decimal((whole or "0") + (f".{fraction}" if fraction else ""))
    except InvalidOperation:
        raise BadValue(f"'{cell}' is not a number (write it like 1200.50 or 1,200.50)") from None
    return (-amount if negative else amount), currency


def integer(cell: str) -> int:
    value = number(cell)
    if value != value.to_integral_value():
        raise BadValue(f"'{cell}' is not a whole number")
    return int(value)


def boolean(cell: str) -> bool:
    folded = cell.strip().casefold()
    if folded in TRUE:
        return True
    if folded in FALSE:
        return False
    raise BadValue(f"'{cell}' is not yes/no (use yes, no, true, false, 1 or 0)")


def day(cell: str, day_first: bool = False) -> date:
    raw = cell.strip().casefold()
    try:
        if match := ISO_DATE.match(raw):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := NUMERIC_DATE.match(raw):
            first, separator, second, year = int(match[1]), match[2], int(match[3]), int(match[4])
            year += 2000 if year < 70 else 1900 if year < 100 else 0
            day_comes_first = day_first or separator == "." or first > 12
            return date(year, second, first) if day_comes_first else date(year, first, second)
        if match := WORDY_DATE.match(raw):
            number_, month_name, year = (match[1], match[2], match[3]) if match[1] else (match[5], match[4], match[6])
            if month_name in MONTHS:
                return date(int(year), MONTHS[month_name], int(number_))
    except ValueError:
        raise BadValue(f"'{cell}' is not a real date") from None
    raise BadValue(f"'{cell}' is not a date (write it as 2026-03-31, 31.03.2026, 03/31/2026 or 31 Mar 2026)")


def moment(cell: str, day_first: bool = False) -> datetime:
    raw = cell.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None:
        head, _, clock = raw.partition(" ")
        if clock and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", clock.strip()):
            parsed = datetime.combine(day(head, day_first), time.fromisoformat(clock.strip().zfill(5)))
        else:
            parsed = datetime.combine(day(raw, day_first), time())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def phone(cell: str) -> str:
    raw = EXTENSION.sub("", cell.strip().removeprefix("tel:"))
    cleaned = " ".join(PHONE_ALLOWED.sub(" ", raw).split())
    if sum(c.isdigit() for c in cleaned) < 3:
        raise BadValue(f"'{cell}' is not a phone number (it needs at least 3 digits)")
    return cleaned[:40]


def email(cell: str) -> str:
    raw = cell.strip().removeprefix("mailto:")
    if "<" in raw and raw.endswith(">"):  # "Ada Lovelace <ada@acme.com>"
        raw = raw[raw.rindex("<") + 1 : -1]
    return raw.strip().strip(".")


def values(cell: str, names: bool = False) -> list[str]:
    """The values of a list cell; `names`: only `;` and `|` separate (a name may hold a comma)."""
    parts = (SPLIT_NAMES if names else SPLIT_LIST).split(cell.strip())
    return [p for p in (part.strip() for part in parts) if not blank(p)]


def aligned(cell: str) -> list[str | None]:
    """The values of a cell that lines up with a list cell: `; champion` is nothing for the first, then one."""
    return [None if blank(part) else part.strip() for part in SPLIT_NAMES.split(cell)]


def option(cell: str, allowed: tuple[str, ...]) -> str:
    """One of an enum's values, by any case and with spaces or dashes for underscores."""
    key = re.sub(r"[\s-]+", "_", cell.strip().casefold())
    if key in allowed:
        return key
    raise BadValue(f"'{cell}' is not one of: {', '.join(allowed)}")
