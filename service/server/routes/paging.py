"""Cursor paging and empty query filters, shared by the routes that list things."""

import base64
import binascii

from ..errors import field_error


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The sequence number a cursor from `encode_cursor` stands for (a 422 on anything else)."""
    if not cursor:
        return None
    try:
        seq = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        seq = 0
    if not 0 < seq < 2**63:
        raise field_error(["query", "cursor"], "not a cursor from this API", "value_error")
    return seq


def empty_is_none(value: str | None) -> str | None:
    """`?status=&kind=` means no filter."""
    return value or None
