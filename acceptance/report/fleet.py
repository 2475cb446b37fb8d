"""The fleet table: benchmark_report.json files of several hosts or cards merged into one table.

One row per run: host, card, verdict, relative error per output tensor, the
device's p50/p99 latency and throughput. The fleet is PASS only when every row
is PASS and every row tested the same weights, config and thresholds - a fleet
that mixes models has not signed off one model.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import AcceptanceError
from .html import BANNER_CLASS, COMPONENTS
from .markup import esc, fmt
from .schema import schema_errors
from .verdict import FAIL, NOT_VALID, PASS, STATUSES

FLEET_SCHEMA_ID = "dinov3-acceptance/fleet_report"
REPORT_FILE = "benchmark_report.json"


class ReportInputError(AcceptanceError):
    """A file given to the merge is missing, not JSON, or not a benchmark report."""


def report_paths(arguments: Iterable[Path]) -> list[Path]:
    """Files as given; a folder stands for the ``benchmark_report.json`` in it (its latest run)."""
    paths = []
    for argument in arguments:
        path = Path(argument) / REPORT_FILE if Path(argument).is_dir() else Path(argument)
        if not path.is_file():
            raise ReportInputError(f"{argument} is neither a report file nor a folder holding {REPORT_FILE}",
                                   "pass benchmark_report.json files or report folders (e.g. "
                                   "reports/runs/*/benchmark_report.json for every run of a host)")
        paths.append(path)
    return paths


def load_report(path: Path) -> dict[str, Any]:
    """Read one report and check it against the schema."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportInputError(f"{path} cannot be read as JSON ({error})",
                               "pass the benchmark_report.json an acceptance run wrote") from None
    problems = schema_errors(report)
    if problems:
        raise ReportInputError(f"{path} is not a valid benchmark report: " + "; ".join(problems[:3])
                               + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""),
                               "pass the benchmark_report.json an acceptance run of this suite wrote "
                               "(same schema version)")
    return report


def _fingerprint(report: Mapping[str, Any]) -> dict[str, Any]:
    model = report["model"]
    return {"weights_sha256": model.get("weights_sha256"), "config_sha256": model.get("config_sha256"),
            "thresholds_sha256": report["thresholds"]["sha256"], "dtype": report["precision"]["dtype"]}


def fleet_row(report: Mapping[str, Any], source: str) -> dict[str, Any]:
    device, performance = report["device"], report["performance"]
    measured = performance.get("device") or {}
    return {
        "host": (report["run"]["host"] or {}).get("hostname"),
        "device": device["device"], "device_name": device["name"], "device_count": device["count"],
        "accelerator": device["accelerator"],
        "model": report["model"]["name"], "architecture": report["model"]["architecture"],
        "architecture_only": report["model"]["architecture_only"], "dtype": report["precision"]["dtype"],
        "verdict": report["verdict"]["status"], "reasons": report["verdict"]["reasons"],
        "relative_errors": {name: entry["relative_error"] for name, entry in report["accuracy"]["tensors"].items()},
        "accuracy_pass": report["accuracy"]["pass"],
        "p50_ms": measured.get("p50_ms"), "p99_ms": measured.get("p99_ms"), "mean_ms": measured.get("mean_ms"),
        "throughput_img_per_sec": measured.get("throughput_img_per_sec"), "speedup": performance.get("speedup"),
        "run_id": report["run"]["id"], "started_at": report["run"]["started_at"], "source": source,
        "fingerprint": _fingerprint(report),
    }


def card_rows(report: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """A whole-server report (--device npu:all) as one row per card (host x card); any other as one row.
    A card that passed is held back only by what concerns the run as a whole (not another card)."""
    server = (report.get("sections") or {}).get("server")
    row = fleet_row(report, source)
    if not server:
        return [row]
    run_reasons = [reason for reason in report["verdict"]["reasons"] if not reason.startswith("card ")]
    run_status = report["verdict"]["status"]
    rows = []
    for card in server["cards"]:
        if card["verdict"] == "FAIL":
            status = FAIL
        elif card["verdict"] != "PASS" or run_status == NOT_VALID:
            status = NOT_VALID
        else:
            status = FAIL if run_status == FAIL and run_reasons else PASS
        rows.append({**row, "device": card["card"], "device_name": card["name"], "verdict": status,
                     "reasons": list(card["reasons"]) + (run_reasons if status != PASS else []),
                     "relative_errors": {name: entry["relative_error"] for name, entry in card["accuracy"].items()},
                     "accuracy_pass": all(entry.get("finite") for entry in card["accuracy"].values())
                     if card["accuracy"] else None,
                     "p50_ms": card.get("p50_ms"), "p99_ms": None, "mean_ms": None,
                     "throughput_img_per_sec": card.get("throughput_img_per_s"), "speedup": None,
                     "server": server["spec"]})
    return rows


def merge(reports: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The fleet table from (source, report) pairs, a whole-server report giving one row per card;
    the same run given twice counts once."""
    rows, seen, notes = [], set(), []
    for source, report in reports:
        for row in card_rows(report, source):
            key = (row["host"], row["run_id"], row["device"])
            if key in seen:
                notes.append(f"{source}: the same run as an earlier file (host {row['host']}, run {row['run_id']}, "
                             f"{row['device']}); counted once")
                continue
            seen.add(key)
            rows.append(row)
    rows.sort(key=lambda row: (str(row["host"]), str(row["device"]), str(row["started_at"])))
    tensors = sorted({name for row in rows for name in row["relative_errors"]})

    reasons = []
    for field in ("weights_sha256", "config_sha256", "thresholds_sha256", "dtype"):
        values = {json.dumps(row["fingerprint"][field], sort_keys=True) for row in rows}
        if len(values) > 1:
            reasons.append(f"the runs differ in {field}: they did not test the same thing")
    counts = {status: sum(row["verdict"] == status for row in rows) for status in STATUSES}
    if counts[FAIL]:
        reasons.insert(0, f"{counts[FAIL]} of {len(rows)} run(s) FAIL")
    if counts[NOT_VALID]:
        reasons.append(f"{counts[NOT_VALID]} of {len(rows)} run(s) NOT VALID FOR SIGN-OFF")
    if not rows:
        reasons.append("no reports were merged")
    status = FAIL if counts[FAIL] else NOT_VALID if reasons else PASS
    return {"schema": FLEET_SCHEMA_ID, "schema_version": 1,
            "created_at": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
            "verdict": {"status": status, "reasons": reasons, "counts": counts},
            "tensors": tensors, "rows": rows, "notes": notes}


def _verdict_cell(status: str) -> str:
    css = {PASS: "dinov3-ok", FAIL: "dinov3-bad", NOT_VALID: "dinov3-warn"}[status]
    return f'<td class="{css}">{esc(status)}</td>'


def fleet_html(fleet: Mapping[str, Any]) -> str:
    """A self-contained page: fleet verdict banner, then one row per host/card."""
    verdict = fleet["verdict"]
    reasons = "".join(f"<li>{esc(reason)}</li>" for reason in verdict["reasons"])
    header = (["Host", "Device", "Name", "Model", "dtype", "Verdict"]
              + [f"rel. err {esc(name)}" for name in fleet["tensors"]]
              + ["p50 (ms)", "p99 (ms)", "Throughput", "Speedup", "Started", "Why not PASS"])
    body = []
    for row in fleet["rows"]:
        model = esc(row["model"]) + (" <b>(architecture-only)</b>" if row["architecture_only"] else "")
        cells = ([f"<td>{esc(row['host'])}</td>", f"<td>{esc(row['device'])}</td>",
                  f"<td>{esc(row['device_name'])}</td>",
                  f"<td>{model}</td>", f"<td>{esc(row['dtype'])}</td>", _verdict_cell(row["verdict"])]
                 + [f'<td class="num">{esc(fmt(row["relative_errors"].get(name), "percent"))}</td>'
                    for name in fleet["tensors"]]
                 + [f'<td class="num">{esc(fmt(row[key], kind))}</td>' for key, kind in
                    (("p50_ms", "ms"), ("p99_ms", "ms"), ("throughput_img_per_sec", "rate"), ("speedup", "speedup"))]
                 + [f"<td>{esc(row['started_at'])}</td>",
                    "<td>" + "<br/>".join(esc(r) for r in row["reasons"]) + "</td>"])
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f'<p class="dinov3-note">{esc(note)}</p>' for note in fleet["notes"])
    sources = "".join(f"<li><code>{esc(row['source'])}</code></li>" for row in fleet["rows"])
    title = f"DINOv3 fleet acceptance - {len(fleet['rows'])} run(s) - {fleet['created_at'][:10]}"
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"/>"
            f"<title>{esc(title)}</title><style>body {{ font-family: Helvetica, Arial, sans-serif; }}"
            f"{COMPONENTS}</style></head><body><div class=\"dinov3\"><h2>{esc(title)}</h2>"
            f'<div class="dinov3-banner {BANNER_CLASS[verdict["status"]]}" id="dinov3-verdict">'
            f'<div class="dinov3-status">{esc(verdict["status"])}</div>'
            + (f"<ul>{reasons}</ul>" if reasons else "") + "</div>"
            + '<table class="dinov3-table" id="dinov3-fleet"><thead><tr>'
            + "".join(f"<th>{cell}</th>" for cell in header) + "</tr></thead><tbody>" + "".join(body)
            + f"</tbody></table>{notes}<h3>Merged reports</h3><ul>{sources}</ul></div></body></html>\n")


def fleet_text(fleet: Mapping[str, Any]) -> list[str]:
    """The table as terminal lines."""
    lines = [f"fleet verdict: {fleet['verdict']['status']}"] + [f"  {r}" for r in fleet["verdict"]["reasons"]]
    for row in fleet["rows"]:
        errors = ", ".join(f"{name} {fmt(value, 'percent')}" for name, value in row["relative_errors"].items())
        lines.append(f"{row['host']} {row['device']} ({row['device_name']}): {row['verdict']}; "
                     f"rel. err {errors or 'n/a'}; "
                     f"p50 {fmt(row['p50_ms'], 'ms')}, p99 {fmt(row['p99_ms'], 'ms')}, "
                     f"{fmt(row['throughput_img_per_sec'], 'rate')}")
    return lines
