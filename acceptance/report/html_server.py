"""The whole-server part of the HTML summary: one row per card and the server's verdict ('' when not such a run)."""

from __future__ import annotations

from typing import Any, Mapping

from .html import _num, _table, esc, fmt
from .html_scale import _mib


def _accuracy(card: Mapping[str, Any], figure: str, kind: str) -> str:
    return "<br/>".join(f"{esc(name)}: {esc(fmt(values.get(figure), kind))}"
                        for name, values in (card.get("accuracy") or {}).items()) or "not run"


def _determinism(data: Mapping[str, Any] | None) -> str:
    if not data:
        return "not run"
    return "bitwise identical" if data.get("bitwise_identical") else f"spread {fmt(data.get('max_abs_spread'), 'sci')}"


def server_html(report: Mapping[str, Any]) -> str:
    server = (report.get("sections") or {}).get("server")
    if not server:
        return ""
    rows = []
    for card in server.get("cards") or []:
        memory = card.get("peak_memory_bytes")
        rows.append([
            esc(card["card"]), esc(card.get("name") or ""), esc(card.get("bus_id") or "not given by the runtime"),
            _accuracy(card, "relative_error", "percent"), _accuracy(card, "cosine", "cosine"),
            esc(fmt(card.get("p50_ms"), "ms")) + " / " + esc(fmt(card.get("p90_ms"), "ms"))
            + (f" ({esc(card['latency_mode'])})" if card.get("latency_mode") else ""),
            _num(fmt(card.get("throughput_img_per_s"), "rate")),
            esc(_mib(memory)) if memory is not None else esc(card.get("peak_memory_note") or "not measured"),
            esc(_determinism(card.get("determinism"))),
            f"<b>{esc(card['verdict'])}</b>" + "".join(f"<br/>{esc(reason)}" for reason in card.get("reasons", [])[:3]),
        ])
    failing = server.get("failing_cards") or []
    head = (f"<h3>Server: {esc(server.get('spec'))} - {esc(server.get('verdict'))}"
            + (f" (failing: {esc(', '.join(failing))})" if failing else " (every listed card passes)") + "</h3>")
    return head + _table(["Card", "Device", "Bus id", "Relative error", "Cosine", "p50 / p90 ms", "Images/s",
                          "Peak memory", "Determinism", "Verdict"], rows, "dinov3-server")
