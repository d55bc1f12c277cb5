"""Pakistani mobile numbers, brought to one form before they are compared or stored.

Citizens write the same number half a dozen ways (`0300-1234567`, `+92 300 1234567`,
`0092300...`); the telco SIM check and the SMS gateway both key on E.164, so every form is
turned into `+923001234567` at the edge, and anything that is not a mobile number is refused
there rather than sent to a registry. Landlines, short codes and operator prefixes outside
30x-34x are refused too: a one-time code can only go to a mobile.
"""

from __future__ import annotations

import re

from identity.errors import InvalidMobile

COUNTRY_CODE = "+92"

# A trunk or international prefix, the operator code 30x-34x, then the 7-digit subscriber
# number; a single space or hyphen may separate the three parts.
_MOBILE = re.compile(r"(?:\+92|0092|92|0)[ -]?(3[0-4][0-9])[ -]?([0-9]{7})")


def normalise_mobile(text: str) -> str:
    """The E.164 form, `+923001234567`, of a Pakistani mobile number written any usual way.

    Accepted: `03001234567`, `0300-1234567`, `+923001234567`, `923001234567`,
    `0092 300 1234567`, with surrounding whitespace. Refused: anything else, including
    non-ASCII digits and a trunk 0 after the country code.
    """
    if not isinstance(text, str):
        raise InvalidMobile("a mobile number is text")
    match = _MOBILE.fullmatch(text.strip())
    if match is None:
        raise InvalidMobile("a mobile number is 03XX-XXXXXXX or +923XXXXXXXXX")
    operator, subscriber = match.groups()
    return f"{COUNTRY_CODE}{operator}{subscriber}"
