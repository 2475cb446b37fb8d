"""benchmark_report.json: the run's results as one plain dict, and how report files are written.

The dict is built once from RunResults and the verdict; the HTML report and the
fleet merge render from the same dict. Its figures keep the seed's names
(``mean_ms`` ... ``p99_ms``, ``std_ms``, ``throughput_img_per_sec``, ``speedup``;
per tensor ``shape``, ``max_diff``, ``mean_diff``, ``relative_error``, ``pass``)
and add provenance. The shape is fixed by ``schema/benchmark_report.schema.json``.

Files are written atomically (temporary file + rename), each run into its own
folder ``<report dir>/runs/<time>-<host>-<device>/``, and the finished files
are then copied (atomically too) to stable names at the top of the report
dir - the latest run - so no run ever overwrites another's files.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from ..device_kinds import reported_versions
from ..hashing import file_sha256
from ..models import known_family
from ..results import RunResults
from ..thresholds import Thresholds
from .verdict import Verdict

SCHEMA_ID = "dinov3-acceptance/benchmark_report"
SCHEMA_VERSION = 1
#: the whole schema's file name, beside the report in its run folder and in the report folder ("$schema")
SCHEMA_FILE_NAME = "benchmark_report.schema.json"
REPORT_FILE = "benchmark_report.json"
HTML_FILE = "acceptance.html"
JUNIT_FILE = "junit.xml"
RUNS_FOLDER = "runs"
#: the exit status recorded while the session is still running (a report left by a killed run)
RUNNING = "RUNNING"



def jsonable(value: Any) -> Any:
    """Plain JSON data: tuples become lists, paths strings, and NaN/Inf the strings
    "NaN", "Infinity", "-Infinity" (JSON has no non-finite numbers; ``float()`` reads them back)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars, torch tensors
        return jsonable(value.tolist())
    return str(value)  # Path, dtype, enum: their text is what a reader needs


def architecture_name(config: Mapping[str, Any]) -> str:
    """The family's name for it: "ViT-B/16" for the published sizes, else the dimensions that define the
    model; a model type no family knows (a report from elsewhere) is named by its model_type."""
    family = known_family(config.get("model_type", "dinov3_vit"))  # reports before model_type was recorded
    if family is None:
        return str(config.get("model_type") or "unknown model")
    return family.display_name(config)


def model_facts(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's provenance plus a display name and its architecture."""
    path = str(checkpoint.get("path") or "")
    return {"name": Path(path).name or "?", "architecture": architecture_name(checkpoint.get("config") or {}),
            **checkpoint}


def report_title(results: RunResults, when: _dt.datetime | None = None) -> str:
    """"DINOv3 ViT-B/16 (folder) on npu:0 (Ascend910) - 2025-01-31": model, device and date."""
    model = model_facts(results.checkpoint)
    flag = ", architecture-only" if results.architecture_only else ""
    device = results.device
    date = (when or _dt.datetime.now()).strftime("%Y-%m-%d")
    return (f"DINOv3 {model['architecture']} ({model['name']}{flag}) on {device.get('device', '?')} "
            f"({device.get('name', '?')}) - {date}")


def _accuracy(results: RunResults, thresholds: Thresholds, dtype: str) -> dict[str, Any]:
    limits = thresholds.accuracy_for(dtype)
    tensors = {}
    for name, comparison in results.comparisons.items():
        passed = limits.accepts(comparison)
        tensors[name] = {
            "shape": list(comparison.shape), "reference_dtype": comparison.reference_dtype,
            "device_dtype": comparison.candidate_dtype, "max_diff": comparison.max_abs_diff,
            "mean_diff": comparison.mean_abs_diff, "relative_error": comparison.relative_error,
            "cosine": comparison.cosine, "nonfinite_device": comparison.nonfinite_candidate,
            "nonfinite_reference": comparison.nonfinite_reference, "pass": passed,
        }
    return {
        "criterion": f"relative_error < {limits.max_relative_error:.2%} and cosine >= {limits.min_cosine:g}, "
                     "all values finite",
        "definition": "relative_error = mean|device - reference| / mean|reference|",
        "dtype": dtype, "max_relative_error": limits.max_relative_error, "min_cosine": limits.min_cosine,
        "tensors": tensors, "pass": all(t["pass"] for t in tensors.values()) if tensors else None,
    }


def _versions(results: RunResults) -> dict[str, Any]:
    vendor = results.device.get("versions") or {}
    versions = dict(results.versions)
    versions.update(reported_versions(versions, vendor))  # torch_npu, CANN ...: named on every host
    versions["device_runtime"] = dict(vendor)
    return versions


def build_report(results: RunResults, verdict: Verdict, *, thresholds: Thresholds, dtype: str,
                 exit_status: str, run_id: str, files: Mapping[str, str] | None = None,
                 environment: Mapping[str, str] | None = None,
                 check_metrics: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """benchmark_report.json as a dict (already JSON-safe).

    ``environment`` must already be redacted; ``check_metrics`` maps a test's
    node id to the figures it recorded (its user properties).
    """
    check_metrics = check_metrics or {}
    device = results.device
    latency = results.latency
    sections = results.sections()
    sections.pop("latency", None)  # the report's "performance" block, in the seed's layout
    report = {
        "$schema": SCHEMA_FILE_NAME,
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "title": report_title(results),
        "verdict": verdict.to_dict(),
        "run": {
            "id": run_id, "started_at": results.started_at, "finished_at": results.finished_at,
            "exit_status": exit_status, "host": results.host, "files": dict(files or {}),
            "options": results.config,
        },
        "model": model_facts(results.checkpoint),
        "input": {"image": results.image, "preprocessor": results.preprocessor,
                  "batch_size": results.config.get("batch_size")},
        "device": {
            "kind": device.get("kind"), "device": device.get("device"), "name": device.get("name"),
            "count": device.get("count"), "accelerator": device.get("kind") not in (None, "cpu"),
            "selection": device.get("selection", []), "simulation": device.get("simulation"),
        },
        "precision": {"dtype": dtype, "reference": {"device": "cpu", "dtype": "float32"},
                      "settings": device.get("precision_settings", {})},
        "versions": _versions(results),
        "thresholds": {
            "path": str(thresholds.path),
            "sha256": file_sha256(thresholds.path) if thresholds.path.is_file() else None,
            "accuracy": {"dtype": dtype, **asdict(thresholds.accuracy_for(dtype))},
            "latency": latency.thresholds.to_dict() if latency.thresholds else None,
            "values": thresholds.raw,
        },
        "outputs": results.outputs,
        "accuracy": _accuracy(results, thresholds, dtype),
        "performance": latency.performance(),
        "checks": [{**vars(check), "markers": list(check.markers), "metrics": dict(check_metrics.get(nodeid, {}))}
                   for nodeid, check in results.checks.items()],
        "environment_variables": dict(environment or {}),
        "sections": sections,
    }
    return jsonable(report)


def dumps(report: Mapping[str, Any]) -> str:
    """The report as JSON text; refuses NaN (``jsonable`` has already turned it into a string)."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; reports are for the team
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, destination: Path) -> None:
    """Copy a finished file to a stable name, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "", text) or "x"


def new_run_folder(report_dir: Path, started: _dt.datetime, host: str, device_spec: str) -> Path:
    """Create ``<report_dir>/runs/<YYYYmmdd-HHMMSS>-<host>-<device>[-N]`` - a new folder, never an old one."""
    runs = report_dir / RUNS_FOLDER
    runs.mkdir(parents=True, exist_ok=True)
    base = f"{started:%Y%m%d-%H%M%S}-{_slug(host)}-{_slug(device_spec)}"
    for attempt in range(1, 1000):
        folder = runs / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # another run started in the same second with the same device
        return folder
    raise FileExistsError(f"could not create a new run folder under {runs} (1000 named {base}* exist)")
