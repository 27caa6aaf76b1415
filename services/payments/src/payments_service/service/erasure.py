"""Account deletion (UserDeletionRequested): what identifies the user leaves their payments.

Amounts, statuses and the ids that tie a payment to its order and to the provider stay, as the
accounting and any refund or dispute need them; so do the card's brand and last four digits,
which a customer's bank statement is matched against. The address the order came from, the
card's fingerprint and country, the risk reasons that quote them, an admin's review note and the
provider's copies of the intents go. The account is recorded as erased first: an event of one of
its orders arriving later stores none of these (`repository.ERASURES`).
"""

from __future__ import annotations

from contracts.types import utc_now
from shopkit.privacy import REMOVED

from payments_service import repository
from payments_service.service.work import Work


async def forget(work: Work, *, user_id: str) -> None:
    await repository.ERASURES.remember(work.session, user_id, utc_now())
    await repository.scrub_user(work.session, user_id, removed=REMOVED)
