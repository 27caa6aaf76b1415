"""Risk scoring before an authorization: velocity per user, IP and card, amount thresholds,
and the card's issuing country against the shipping country.

Velocity counters are Redis sorted sets of attempt ids scored by time: counting the window is
one ZCOUNT, old entries are trimmed as they expire, and re-scoring the same attempt (a retried
event) adds nothing because the member is the attempt id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from redis.asyncio import Redis

from payments_service.config import PaymentsSettings
from payments_service.provider import CardDetails


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    score: int
    level: RiskLevel
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RiskSubject:
    """What an attempt is scored on."""

    attempt_key: str
    user_id: str
    customer_ip: str | None
    card: CardDetails
    amount: int
    shipping_country: str | None


class RiskEngine:
    def __init__(self, redis: Redis, settings: PaymentsSettings) -> None:
        self.redis = redis
        self.settings = settings

    async def assess(self, subject: RiskSubject) -> RiskAssessment:
        s = self.settings
        if not s.risk_enabled:
            return RiskAssessment(score=0, level=RiskLevel.LOW, reasons=["risk checks disabled"])
        score = 0
        reasons: list[str] = []

        counters = [
            ("user", subject.user_id, s.risk_user_attempts_medium, s.risk_user_attempts_high)
        ]
        if subject.customer_ip:
            counters.append(
                ("ip", subject.customer_ip, s.risk_ip_attempts_medium, s.risk_ip_attempts_high)
            )
        if subject.card.fingerprint:
            counters.append(
                (
                    "card",
                    subject.card.fingerprint,
                    s.risk_card_attempts_medium,
                    s.risk_card_attempts_high,
                )
            )
        counts = await self._record_and_count(
            subject.attempt_key, [(k, v) for k, v, _, _ in counters]
        )
        for (kind, _, medium, high), count in zip(counters, counts, strict=True):
            if count > high:
                score += 80
                reasons.append(
                    f"{kind} velocity {count} attempts/{s.risk_velocity_window_seconds}s"
                )
            elif count > medium:
                score += 40
                reasons.append(
                    f"{kind} velocity {count} attempts/{s.risk_velocity_window_seconds}s"
                )

        if subject.amount >= s.risk_amount_block:
            score += 80
            reasons.append(f"amount {subject.amount} at or above {s.risk_amount_block}")
        elif subject.amount >= s.risk_amount_review:
            score += 40
            reasons.append(f"amount {subject.amount} at or above {s.risk_amount_review}")

        card_country = subject.card.country
        if card_country and subject.shipping_country and card_country != subject.shipping_country:
            score += s.risk_country_mismatch_score
            reasons.append(
                f"card country {card_country} != shipping country {subject.shipping_country}"
            )

        if score >= s.risk_high_score:
            level = RiskLevel.HIGH
        elif score >= s.risk_medium_score:
            level = RiskLevel.MEDIUM
        else:
            level = RiskLevel.LOW
        return RiskAssessment(score=score, level=level, reasons=reasons)

    async def _record_and_count(self, member: str, keys: list[tuple[str, str]]) -> list[int]:
        now = time.time()
        window = self.settings.risk_velocity_window_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            for kind, value in keys:
                key = f"{self.settings.risk_key_prefix}{kind}:{value}"
                # NX: a retried attempt keeps its first timestamp and is counted once.
                pipe.zadd(key, {member: now}, nx=True)
                pipe.zremrangebyscore(key, "-inf", now - window)
                pipe.zcard(key)
                pipe.expire(key, window)
            results = await pipe.execute()
        return [int(results[i * 4 + 2]) for i in range(len(keys))]
