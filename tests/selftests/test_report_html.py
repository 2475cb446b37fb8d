"""HTML fragments: escaping of every user-controlled string, the tables, the plots, redaction."""

import base64
import configparser

import pytest

from acceptance.report.html import fmt, metrics_extra, summary_html
from acceptance.report.redaction import REDACTED, redact, relevant_variables
from acceptance.report.verdict import FAIL, NOT_VALID, PASS

from .reporting_samples import ALLOWED_TAGS, HOSTILE, ROOT, parse, sample_report


def hostile_report():
    report = sample_report(failing=True, diagnosis=True, device_name=HOSTILE, hostname=HOSTILE)
    report["model"]["path"] = HOSTILE
    report["model"]["name"] = HOSTILE
    report["input"]["image"]["source"] = HOSTILE
    report["sections"]["diagnosis"]["layers"][0]["name"] = HOSTILE
    report["checks"][-1]["message"] = HOSTILE
    report["performance"]["thresholds"] = {HOSTILE: 1}
    return report


def test_user_strings_are_escaped():
    markup = summary_html(hostile_report())
    parsed = parse(markup)
    assert set(parsed.tags) <= ALLOWED_TAGS, set(parsed.tags) - ALLOWED_TAGS
    assert not [name for name in parsed.attributes if name.startswith("on")]
    assert "<script" not in markup and "&lt;script&gt;" in markup
    assert all(image["src"].startswith("data:image/png;base64,") for image in parsed.images)


def test_metrics_extra_escapes_names_and_values():
    markup = metrics_extra({HOSTILE: HOSTILE, "relative_error": 0.0034999999})
    assert "<script" not in markup and "0.0035" in markup
    assert set(parse(markup).tags) <= ALLOWED_TAGS


@pytest.mark.parametrize("kwargs, status, css", [
    ({}, PASS, "dinov3-pass"),
    ({"failing": True}, FAIL, "dinov3-fail"),
    ({"architecture_only": True}, NOT_VALID, "dinov3-not-valid"),
    ({"device_kind": "cpu"}, NOT_VALID, "dinov3-not-valid"),
])
def test_banner_shows_the_verdict(kwargs, status, css):
    markup = summary_html(sample_report(**kwargs))
    assert f'<div class="dinov3-banner {css}" id="dinov3-verdict"><div class="dinov3-status">{status}</div>' in markup


def test_cpu_run_says_no_accelerator_ran():
    assert "no accelerator ran in this session" in summary_html(sample_report(device_kind="cpu"))
    assert "a real accelerator ran the device model" in summary_html(sample_report())


def test_accuracy_and_latency_tables():
    markup = summary_html(sample_report())
    assert 'id="dinov3-accuracy"' in markup and 'id="dinov3-latency"' in markup
    assert "last_hidden_state</td><td>[1, 201, 768]" in markup
    assert "74.66x" in markup
    assert "device p99_ms n/a: needs at least 100 timed runs, had 19" in markup
    assert "limits: max_p50_ms = 12.0" in markup


def test_plots_are_embedded_pngs():
    images = parse(summary_html(sample_report())).images
    assert [image["alt"] for image in images] == ["latency distribution", "CPU vs device"]
    for image in images:
        data = base64.b64decode(image["src"].split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_absent_sections_are_skipped_cleanly():
    markup = summary_html(sample_report(latency=False))
    assert "not measured: no latency test ran in this session" in markup
    assert "<img" not in markup and 'id="dinov3-diagnosis"' not in markup
    assert 'id="dinov3-diagnosis"' in summary_html(sample_report(diagnosis=True))


@pytest.mark.parametrize("value, kind, text", [
    (None, "ms", "n/a"), ("NaN", "percent", "NaN"), (0.0035, "percent", "0.3500%"), (8.7561, "ms", "8.756 ms"),
    (74.66, "speedup", "74.66x"), (1.256609e-02, "sci", "1.257e-02"), (114.2, "rate", "114.20 img/s"),
])
def test_fmt(value, kind, text):
    assert fmt(value, kind) == text


def shipped_redact_patterns():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "pytest.ini")
    return [line.strip() for line in ini["pytest"]["environment_table_redact_list"].splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "DINOV3_API_KEY", "AWS_SECRET_ACCESS_KEY",
                                  "DB_PASSWORD", "GITLAB_PRIVATE_TOKEN", "ascend_auth_key", "CI_JOB_TOKEN"])
def test_secret_names_are_redacted(name):
    assert redact({name: "s3cr3t"}, shipped_redact_patterns()) == {name: REDACTED}


@pytest.mark.parametrize("name", ["ASCEND_RT_VISIBLE_DEVICES", "TORCH_DEVICE_BACKEND_AUTOLOAD", "HF_HUB_OFFLINE",
                                  "DINOV3_DEVICE", "OMP_NUM_THREADS"])
def test_ordinary_names_are_kept(name):
    assert redact({name: "1"}, shipped_redact_patterns()) == {name: "1"}


def test_url_credentials_are_scrubbed():
    assert redact({"HF_ENDPOINT": "https://user:pw@mirror.example/hf"}, []) == {
        "HF_ENDPOINT": f"https://{REDACTED}@mirror.example/hf"}


def test_relevant_variables_only():
    environ = {"HF_TOKEN": "x", "ASCEND_RT_VISIBLE_DEVICES": "0", "HOME": "/root", "PATH": "/bin",
               "CUDA_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES_EXTRA": "no", "DINOV3_DEVICE": "npu"}
    assert list(relevant_variables(environ)) == ["ASCEND_RT_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES",
                                                 "DINOV3_DEVICE", "HF_TOKEN"]


def test_layer_plot_reads_nan_as_stored_in_the_json_report():
    from acceptance.report.plots_diagnosis import layer_drift_png
    rows = [{"name": name, "relative_error": value} for name, value in
            (("embeddings", 1e-3), ("layer.0", "NaN"), ("norm", "Infinity"))]
    assert layer_drift_png({"layers": rows}).startswith(b"\x89PNG")


def test_a_table_that_cannot_be_drawn_does_not_take_the_report_down():
    from acceptance.report.html import _section

    def broken_table(report):
        return report["missing"]

    note = _section(broken_table, {})
    assert "broken_table could not be drawn: KeyError" in note and "the JSON report holds the data" in note


def test_per_card_figures_and_graph_mode_read_as_figures_not_python_values():
    """Issue 23: the HTML showed `memory_start_bytes = None` and `speedup vs eager 1.45139`."""
    from acceptance.report.html_scale import COMPILE_RUNS_CAP, scale_html

    stats = {"samples": COMPILE_RUNS_CAP}
    page = scale_html({"sections": {
        "soak": {"cpu": {"seconds": 2.0, "forwards": 17, "finite": True, "max_drift": 0.0, "memory_start_bytes": None,
                         "memory_growth_bytes": 3 * 2 ** 20, "p50_trend": 0.0123456}},
        "compile": {"backend": "inductor", "compile_seconds": 12.0, "speedup_vs_eager": 1.45139,
                    "accuracy": {"relative_error": 0.0}, "eager": stats, "compiled": stats}}})
    assert "None" not in page and "1.45139" not in page and " = " not in page
    assert "speedup vs eager 1.45x (eager and compiled 10 timed runs each: --num-runs, at most 10)" in page
    assert "memory start bytes not measurable on this backend" in page and "memory growth bytes 3.0 MiB" in page
    assert "finite yes" in page and "p50 trend 0.01235" in page
