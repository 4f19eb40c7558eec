"""What kind of answer the bot's last question expects.

Every question the bot asks carries one of these. The dialogue service derives it from the bot's turn
(the form's requested slot, a pending confirmation) and returns it with the reply; the IVR passes it to
the recogniser for the caller's next utterance, and the dialogue service reads that utterance with it.
"""

from __future__ import annotations

import enum


class Expect(str, enum.Enum):
    FREE = "free"  # anything: a new request, a question
    YES_NO = "yes_no"  # 对 / 不对 and the like (phone check, read-back, "您是要…吗？")
    ADDRESS = "address"  # a place in the city (district, road, number, landmark)
    PHONE = "phone"  # a phone number, digit by digit
    TICKET = "ticket"  # a work-order ticket number
    CHOICE = "choice"  # one of a few named options (`choices` on the turn)
    DESCRIPTION = "description"  # what happened, in the caller's words


#: The form slot the bot is asking for → the answer it expects.
SLOT_EXPECTS: dict[str, Expect] = {
    "address": Expect.ADDRESS,
    "description": Expect.DESCRIPTION,
    "phone_confirmed": Expect.YES_NO,
    "order_confirmed": Expect.YES_NO,
    "caller_phone": Expect.PHONE,
    "ticket": Expect.TICKET,
}
