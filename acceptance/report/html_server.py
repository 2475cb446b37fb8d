"""The whole-server part of the HTML summary: one row per card and the server's verdict ('' when not such a run)."""

from __future__ import annotations

from typing import Any, Mapping

from .html_scale import _mib
from .markup import esc, fmt, num, table


def _accuracy(card: Mapping[str, Any], figure: str, kind: str) -> str:
    return "<br/>".join(f"{esc(name)}: {esc(fmt(values.get(figure), kind))}"
                        for name, values in (card.get("accuracy") or {}).items()) or "not run"


def _determinism(data: Mapping[str, Any] | None) -> str:
    if not data:
        return "not run"
    return "bitwise identical" if data.get("bitwise_identical") else f"spread {fmt(data.get('max_abs_spread'), 'sci')}"


def _bus_id(card: Mapping[str, Any]) -> str:
    """The runtime's bus id, else the vendor tool's (torch_npu gives none; npu-smi does)."""
    if card.get("bus_id"):
        return str(card["bus_id"])
    state = card.get("state_before") or card.get("state_after") or {}
    if state.get("bus_id"):
        return f"{state['bus_id']} ({state.get('tool', 'vendor tool')})"
    return "not given by the runtime"


def _sweep(card: Mapping[str, Any]) -> str:
    sweep = card.get("sweep")
    if not sweep:
        return "not run"
    ok = [point for point in sweep.get("points") or [] if point.get("status") == "ok"]
    best = max((point.get("throughput_img_per_s") or 0 for point in ok), default=None)
    limits = "; ".join(f"{resolution}px: batch {fmt(limit.get('max_batch_ok'))} ok"
                       + (f", OOM at {limit['first_oom_batch']}" if limit.get("first_oom_batch") else "")
                       for resolution, limit in (sweep.get("limits") or {}).items())
    return esc(f"{len(ok)}/{len(sweep.get('points') or [])} points, best {fmt(best, 'rate')}; {limits}")


def _soak(data: Mapping[str, Any] | None) -> str:
    if not data:
        return "not run"
    return (f"{data.get('iterations')} forwards in {fmt(data.get('seconds'))} s, "
            f"drift {fmt(data.get('max_drift'), 'sci')}")


def _state(state: Mapping[str, Any] | None) -> list[str]:
    """Health, temperature, power, memory in use, uncorrectable ECC (the vendor tool's view of the card)."""
    if not state:
        return ["not read"] * 5
    memory = (f"{fmt(state.get('memory_used_mib'))} / {fmt(state.get('memory_total_mib'))} MiB"
              if state.get("memory_used_mib") is not None else "n/a")
    def unit(value: Any, suffix: str) -> str:
        return "n/a" if value is None else f"{fmt(value)} {suffix}"

    return [esc(state.get("health") or "not reported"), esc(unit(state.get("temperature_c"), "C")),
            esc(unit(state.get("power_w"), "W")), esc(memory), esc(fmt(state.get("ecc_uncorrectable")))]


def _state_table(server: Mapping[str, Any]) -> str:
    """Each card before and after the run, as npu-smi / nvidia-smi saw it, with its driver and firmware."""
    cards = server.get("cards") or []
    if not any(card.get("state_before") or card.get("state_after") for card in cards):
        note = server.get("state_note")
        return f"<p>Card state: {esc(note)}</p>" if note else ""
    rows = []
    for card in cards:
        before, after = card.get("state_before") or {}, card.get("state_after") or {}
        either = after or before
        rows.append([esc(card["card"]), esc(either.get("tool") or ""), esc(either.get("driver") or "n/a"),
                     esc(either.get("firmware") or "n/a"), esc(either.get("bus_id") or "n/a"),
                     *[f"{b} &rarr; {a}" for b, a in zip(_state(before), _state(after))]])
    note = f"<p>{esc(server['state_note'])}</p>" if server.get("state_note") else ""
    return ("<h4>Card state (vendor tool, before &rarr; after the run)</h4>" + note
            + table(["Card", "Tool", "Driver", "Firmware", "Bus id", "Health", "Temperature", "Power",
                      "Memory in use", "Uncorrectable ECC"], rows, "dinov3-server-state"))


def server_html(report: Mapping[str, Any]) -> str:
    server = (report.get("sections") or {}).get("server")
    if not server:
        return ""
    rows = []
    for card in server.get("cards") or []:
        memory = card.get("peak_memory_bytes")
        rows.append([
            esc(card["card"]), esc(card.get("name") or ""), esc(_bus_id(card)),
            _accuracy(card, "relative_error", "percent"), _accuracy(card, "cosine", "cosine"),
            esc(fmt(card.get("p50_ms"), "ms")) + " / " + esc(fmt(card.get("p90_ms"), "ms"))
            + (f" ({esc(card['latency_mode'])})" if card.get("latency_mode") else ""),
            num(fmt(card.get("throughput_img_per_s"), "rate")),
            esc(_mib(memory)) if memory is not None else esc(card.get("peak_memory_note") or "not measured"),
            _sweep(card), esc(fmt(card.get("best_mfu"), "fraction")),
            esc(_determinism(card.get("determinism"))), esc(_soak(card.get("soak"))),
            esc(card.get("profile_top") or "not run"),
            f"<b>{esc(card['verdict'])}</b>" + "".join(f"<br/>{esc(reason)}" for reason in card.get("reasons", [])[:3]),
        ])
    failing = server.get("failing_cards") or []
    head = (f"<h3>Server: {esc(server.get('spec'))} - {esc(server.get('verdict'))}"
            + (f" (failing: {esc(', '.join(failing))})" if failing else " (every listed card passes)") + "</h3>")
    mode = server.get("timing_mode")
    if mode:
        spread = server.get("p50_spread")
        at_once = server.get("timed_at_once")
        head += (f"<p>Cards timed: {esc(mode)}"
                 + (f" ({esc(at_once)} card(s) at a time, one per xdist worker)" if mode == "parallel" and at_once
                    else " (one card at a time)" if mode == "sequential" else "")
                 + (f"; p50 spread between cards {esc(fmt(spread, 'fraction'))} (slowest / fastest - 1)"
                    if spread is not None else "") + "</p>")
    return head + table(["Card", "Device", "Bus id", "Relative error", "Cosine", "p50 / p90 ms", "Images/s",
                          "Peak memory", "Sweep", "Best MFU", "Determinism", "Soak", "Top operators", "Verdict"],
                         rows, "dinov3-server") + _state_table(server)
