"""CI: read back a report of a run on the simulated Ascend card and check what it must say.

    python .ci/check_simulated_report.py REPORT_DIR [CARDS]

Every check ran without failing, the device is named simulated, the verdict is NOT VALID FOR
SIGN-OFF for that reason, and (CARDS given) the server section has a PASS row per card, each with its
latency (timed in parallel) and its sweep.
"""

import json
import sys
from pathlib import Path

folder, cards = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None
report = json.loads((folder / "benchmark_report.json").read_text())
problems = []
if not (report["device"].get("simulation") or "").startswith("simulated NPU (not hardware)"):
    problems.append(f"the device is not named simulated: {report['device']}")
verdict = report["verdict"]
if verdict["status"] != "NOT VALID FOR SIGN-OFF" or not any("simulated NPU" in reason for reason in verdict["reasons"]):
    problems.append(f"the verdict does not say simulated / NOT VALID: {verdict}")
failed = [check["nodeid"] for check in report["checks"] if check["outcome"] in ("failed", "error")]
if failed:
    problems.append(f"checks failed on the simulated card: {failed}")
if cards is not None:
    rows = report["sections"]["server"]["cards"]
    if [row["card"] for row in rows] != [f"npu:{card}" for card in range(cards)] or \
            any(row["verdict"] != "PASS" for row in rows):
        problems.append(f"the server rows are not {cards} PASS rows: {[(row['card'], row['verdict']) for row in rows]}")
    untimed = [row["card"] for row in rows if not row.get("p50_ms") or row.get("latency_mode") != "parallel"
               or not (row.get("sweep") or {}).get("points")]
    if untimed:
        problems.append(f"card(s) without a latency timed in parallel or a sweep: {untimed}")
if not (folder / "acceptance.html").is_file() or \
        "simulated NPU (not hardware)" not in (folder / "acceptance.html").read_text():
    problems.append("the HTML report does not say simulated NPU (not hardware)")
print(f"simulated-card report {folder}: {verdict['status']}, {verdict['counts']}")
if problems:
    sys.exit("\n".join(problems))
