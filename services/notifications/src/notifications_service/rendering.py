"""Jinja2 message templates: one file per (language, template) with subject/text/html/sms blocks.

The same file is loaded by two environments: the HTML block through one that autoescapes
(values from events and profiles are untrusted), the text blocks through one that does not
(so a plain-text "&" stays "&").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context

LANGUAGES = ("pt-BR", "en")
CANCEL_REASONS = {
    "pt-BR": {
        "out_of_stock": "produto sem estoque",
        "payment_failed": "pagamento recusado",
        "reservation_expired": "prazo de pagamento expirado",
        "payment_action_abandoned": "pagamento não concluído",
        "customer_request": "a seu pedido",
        "admin_request": "pela loja",
    },
    "en": {
        "out_of_stock": "out of stock",
        "payment_failed": "payment declined",
        "reservation_expired": "payment window expired",
        "payment_action_abandoned": "payment not completed",
        "customer_request": "at your request",
        "admin_request": "by the store",
    },
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str


def money(amount: int, currency: str, language: str = "pt-BR") -> str:
    """Minor units as the customer reads them: `R$ 1.234,56` (pt-BR) or `BRL 1,234.56`."""
    units, cents = divmod(int(amount), 100)
    if language == "pt-BR":
        grouped = f"{units:,}".replace(",", ".")
        symbol = "R$ " if currency == "BRL" else f"{currency} "
        return f"{symbol}{grouped},{cents:02d}"
    return f"{currency} {units:,}.{cents:02d}"


def _environment(autoescape: bool) -> Environment:
    # Plain text and SMS bodies are not HTML: escaping them would garble "&" and "<". The HTML
    # block is only ever rendered by the autoescaping environment (`_HTML`), hence the nosec.
    env = Environment(  # nosec B701
        loader=PackageLoader("notifications_service", "templates"),
        autoescape=autoescape,  # noqa: S701 - only the text/SMS environment passes False
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["money"] = _money_filter
    return env


@pass_context
def _money_filter(context: Context, amount: int, currency: str) -> str:
    return money(amount, currency, str(context.get("language", LANGUAGES[0])))


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _block(template: Template, name: str, context: dict[str, Any]) -> str:
    block = template.blocks.get(name)
    if block is None:
        return ""
    return "".join(block(template.new_context(context))).strip()


def render(template: str, language: str, context: dict[str, Any]) -> Rendered:
    language = language if language in LANGUAGES else LANGUAGES[0]
    values = {**context, "language": language}
    if "reason" in values:
        values["reason_text"] = CANCEL_REASONS[language].get(
            str(values["reason"]), str(values["reason"])
        )
    text_template = _TEXT.get_template(f"{language}/{template}.j2")
    html_template = _HTML.get_template(f"{language}/{template}.j2")
    subject = " ".join(_block(text_template, "subject", values).split())
    return Rendered(
        subject=subject,
        text=_block(text_template, "text", values) + "\n",
        html=f'<!doctype html><html lang="{language}"><body>'
        f"{_block(html_template, 'html', values)}</body></html>",
        sms=_block(text_template, "sms", values),
    )


def has_sms(template: str) -> bool:
    return "sms" in _TEXT.get_template(f"{LANGUAGES[0]}/{template}.j2").blocks
