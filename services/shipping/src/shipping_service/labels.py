"""Printable shipping labels: a one-page A6 PDF, or ZPL II for thermal printers.

Both are generated from the shipment row on demand (nothing to store, and an anonymised
shipment prints no personal data). The PDF is written by hand: one page, the built-in
Helvetica font, text and rules only, so no rendering library is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopkit.cep import format_cep


@dataclass(frozen=True, slots=True)
class LabelData:
    carrier: str
    service: str
    tracking_number: str
    order_id: str
    weight_grams: int
    recipient_lines: list[str]
    sender_lines: list[str]


def address_lines(address: dict[str, object]) -> list[str]:
    street = " ".join(str(address.get(k) or "") for k in ("street", "number")).strip()
    complement = str(address.get("complement") or "")
    district, town, state = (address.get(k) or "" for k in ("district", "city", "state"))
    city = f"{district} - {town}/{state}"
    lines = [str(address.get("recipient") or ""), street]
    if complement:
        lines.append(complement)
    lines += [city.strip(" -/"), f"CEP {format_cep(str(address.get('cep') or ''))}"]
    return [line for line in lines if line]


def _pdf_text(text: str) -> bytes:
    encoded = text.encode("cp1252", errors="replace")
    return encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def render_pdf(label: LabelData) -> bytes:
    width, height = 298, 420  # A6 in points
    ops: list[bytes] = [b"0.8 w 12 12 274 396 re S"]

    def text(x: int, y: int, size: int, value: str, bold: bool = False) -> None:
        font = b"/F2" if bold else b"/F1"
        ops.append(
            b"BT " + font + b" %d Tf %d %d Td (" % (size, x, y) + _pdf_text(value) + b") Tj ET"
        )

    text(22, 392, 14, f"{label.carrier.upper()} {label.service}", bold=True)
    text(22, 374, 9, f"Pedido / Order {label.order_id}")
    text(22, 362, 9, f"Peso / Weight {label.weight_grams / 1000:.3f} kg")
    ops.append(b"12 352 m 286 352 l S")
    text(22, 332, 9, "DESTINATARIO / RECIPIENT", bold=True)
    y = 316
    for line in label.recipient_lines:
        text(22, y, 11, line[:48])
        y -= 15
    ops.append(b"12 200 m 286 200 l S")
    text(22, 180, 9, "RASTREIO / TRACKING", bold=True)
    text(22, 156, 20, label.tracking_number, bold=True)
    ops.append(b"12 136 m 286 136 l S")
    text(22, 118, 8, "REMETENTE / SENDER", bold=True)
    y = 104
    for line in label.sender_lines:
        text(22, y, 8, line[:64])
        y -= 11
    content = b"\n".join(ops)

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>" % (width, height),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _zpl_text(value: str) -> str:
    # ^ and ~ start ZPL commands; a field must never contain them.
    return value.replace("^", " ").replace("~", " ")


def render_zpl(label: LabelData) -> str:
    lines = [
        "^XA",
        "^CI28",
        "^FO40,30^A0N,40,40^FD" + _zpl_text(f"{label.carrier.upper()} {label.service}") + "^FS",
        "^FO40,80^A0N,24,24^FDOrder " + _zpl_text(label.order_id) + "^FS",
        f"^FO40,110^A0N,24,24^FDWeight {label.weight_grams / 1000:.3f} kg^FS",
        "^FO40,160^A0N,28,28^FDRECIPIENT^FS",
    ]
    y = 200
    for line in label.recipient_lines:
        lines.append(f"^FO40,{y}^A0N,30,30^FD{_zpl_text(line)}^FS")
        y += 36
    lines += [
        f"^FO40,{y + 30}^BY3^BCN,120,Y,N,N^FD{_zpl_text(label.tracking_number)}^FS",
        f"^FO40,{y + 200}^A0N,22,22^FDSENDER^FS",
    ]
    y += 230
    for line in label.sender_lines:
        lines.append(f"^FO40,{y}^A0N,22,22^FD{_zpl_text(line)}^FS")
        y += 26
    lines.append("^XZ")
    return "\n".join(lines) + "\n"
