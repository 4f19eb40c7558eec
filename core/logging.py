"""Std logging set-up with phone numbers masked in every record."""

from __future__ import annotations

import logging
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)|(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")


def mask_phone(text: str) -> str:
    """138 1234 5678 → 138****5678; 0478-6612345 → 0478-****2345."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return f"{m.group(1)}****{m.group(3)}"
        return f"{m.group(4)}****{m.group(6)}"

    return _PHONE.sub(repl, text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
