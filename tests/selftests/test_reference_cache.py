"""The CPU reference cache: a hit reads back what was stored, any key change misses, a bad entry is recomputed."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from acceptance.reference_cache import (
    CacheUse,
    ModelIdentity,
    ReferenceCache,
    ReferenceCacheWarning,
    ReferenceKey,
    sha256_tensor,
)
from tests.selftests.conftest import SUITE_PASSED, SUITE_SKIPPED

IDENTITY = ModelIdentity(config_sha256="c" * 64, weights_sha256=(("model.safetensors", "w" * 64),),
                         torch_version="2.13.0", transformers_version="4.57.1")
PIXELS = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4) / 7


class Counting:
    """A compute function that counts its calls (each call stands for a CPU forward)."""

    def __init__(self, value: float = 1.0):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        base = torch.full((2, 5, 3), self.value)
        return {"last_hidden_state": base, "pooler_output": base[:, 0]}, {"note": "x"}


def test_hit_returns_the_stored_tensors_and_names_the_run(tmp_path):
    key = IDENTITY.key("outputs", PIXELS)
    first, compute = ReferenceCache(tmp_path, "on", run_id="run-1"), Counting()
    computed, _ = first.fetch(key, compute)
    second = ReferenceCache(tmp_path, "on", run_id="run-2")
    cached, metadata = second.fetch(key, compute)
    assert compute.calls == 1
    assert metadata == {"note": "x"}
    for name, tensor in computed.items():
        assert torch.equal(cached[name], tensor), name
    use = second.uses[0]
    assert (use.source, use.from_run, use.key.digest) == ("cached", "run-1", key.digest)
    assert (first.uses[0].source, first.uses[0].reason, first.uses[0].stored) == ("computed", "miss", True)


KEY_CHANGES = {
    "kind": {"kind": "capture"},
    "config": {"config_sha256": "d" * 64},
    "weights": {"weights_sha256": (("model.safetensors", "v" * 64),)},
    "torch": {"torch_version": "2.14.0"},
    "transformers": {"transformers_version": "5.0.0"},
    "dtype": {"dtype": "float64"},
    "pixels": {"pixel_sha256": sha256_tensor(PIXELS + 1e-7)},
    "shape": {"pixel_shape": (1, 3, 4, 4)},
}


@pytest.mark.parametrize("change", list(KEY_CHANGES))
def test_any_key_change_misses(tmp_path, change):
    key = IDENTITY.key("outputs", PIXELS)
    compute = Counting()
    ReferenceCache(tmp_path, "on").fetch(key, compute)
    other = dataclasses.replace(key, **KEY_CHANGES[change])
    assert other.digest != key.digest
    cache = ReferenceCache(tmp_path, "on")
    cache.fetch(other, compute)
    assert compute.calls == 2 and cache.uses[0].source == "computed" and cache.uses[0].reason == "miss"


def test_pixel_hash_sees_one_changed_value():
    changed = PIXELS.clone()
    changed[1, 2, 3, 3] += 1e-6
    assert sha256_tensor(changed) != sha256_tensor(PIXELS)
    assert IDENTITY.key("outputs", changed).digest != IDENTITY.key("outputs", PIXELS).digest


def _corrupt_tensors(folder):
    path = folder / "tensors.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit of one value: still a loadable file, so only the sha256 catches it
    path.write_bytes(bytes(data))


def _truncate_tensors(folder):
    path = folder / "tensors.safetensors"
    path.write_bytes(path.read_bytes()[:20])


def _garble_manifest(folder):
    (folder / "manifest.json").write_text("{not json")


def _other_key_in_manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["key"]["torch"] = "1.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _remove_tensors(folder):
    (folder / "tensors.safetensors").unlink()


@pytest.mark.parametrize("damage", [_corrupt_tensors, _truncate_tensors, _garble_manifest, _other_key_in_manifest,
                                    _remove_tensors])
def test_corrupt_entry_is_recomputed_with_a_warning_and_rewritten(tmp_path, damage):
    key = IDENTITY.key("outputs", PIXELS)
    ReferenceCache(tmp_path, "on").fetch(key, Counting(1.0))
    damage(tmp_path / key.digest)
    cache, compute = ReferenceCache(tmp_path, "on"), Counting(1.0)
    with pytest.warns(ReferenceCacheWarning, match="is not trusted"):
        tensors, _ = cache.fetch(key, compute)
    assert compute.calls == 1 and torch.equal(tensors["last_hidden_state"], torch.ones(2, 5, 3))
    assert cache.uses[0].reason.startswith("corrupt: ")
    again = ReferenceCache(tmp_path, "on")  # the rewritten entry is good again
    again.fetch(key, Counting())
    assert again.uses[0].source == "cached"


def test_refresh_recomputes_and_off_neither_reads_nor_writes(tmp_path):
    key = IDENTITY.key("outputs", PIXELS)
    ReferenceCache(tmp_path, "on").fetch(key, Counting(1.0))
    refresh, compute = ReferenceCache(tmp_path, "refresh"), Counting(2.0)
    refresh.fetch(key, compute)
    assert compute.calls == 1 and refresh.uses[0].reason == "refresh"
    cached, _ = ReferenceCache(tmp_path, "on").fetch(key, Counting())
    assert torch.equal(cached["last_hidden_state"], torch.full((2, 5, 3), 2.0))  # refresh overwrote it
    off_root = tmp_path / "off"
    off = ReferenceCache(off_root, "off")
    off.fetch(key, Counting())
    assert not off_root.exists() and off.uses[0].reason == "off" and not off.uses[0].stored


def test_unwritable_cache_warns_and_still_returns_the_result(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ReferenceCache(blocker / "cache", "on")
    with pytest.warns(ReferenceCacheWarning, match="could not be written"):
        tensors, _ = cache.fetch(IDENTITY.key("outputs", PIXELS), Counting(3.0))
    assert torch.equal(tensors["last_hidden_state"], torch.full((2, 5, 3), 3.0))


def test_key_is_json_and_stable():
    key = IDENTITY.key("outputs", PIXELS)
    assert key.to_dict()["pixel_shape"] == [2, 3, 4, 4]
    assert key.digest == ReferenceKey(**{f.name: getattr(key, f.name) for f in dataclasses.fields(key)}).digest


def _report(tmp_path):
    return json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())


def test_second_identical_run_reads_the_cached_reference_with_identical_accuracy(run_suite, tiny_checkpoint,
                                                                                  tmp_path):
    args = ("--model-path", str(tiny_checkpoint), "--device", "cpu", "--cpu-runs", "3", "--profile", "off")
    outcomes = {"passed": SUITE_PASSED - 1, "skipped": SUITE_SKIPPED + 1}  # --profile off skips the profile test
    run_suite(*args).assert_outcomes(**outcomes)
    first = _report(tmp_path)
    second_result = run_suite(*args)
    second_result.assert_outcomes(**outcomes)
    second = _report(tmp_path)
    reference = second["sections"]["reference"]
    assert reference["computed"] == 0 and reference["cached"] >= 3, reference
    assert reference["summary"].startswith(f"reference: cached from run {first['run']['id']}"), reference["summary"]
    assert first["sections"]["reference"]["computed"] >= 2  # outputs, capture; sweep points at other inputs
    assert first["accuracy"] == second["accuracy"]
    assert first["sections"]["diagnosis"]["layers"] == second["sections"]["diagnosis"]["layers"]
    assert second["performance"]["cpu"]["num_runs"] == 3 and len(second["performance"]["cpu"]["samples_ms"]) == 3
    assert second["performance"]["device"]["num_runs"] == 20
    second_result.stdout.fnmatch_lines(["*reference: cached from run*"])
    # the figures say what they are (issue 23): each side's runs, and the option that gives each side more
    second_result.stdout.fnmatch_lines(["latency: batch 1, CPU 3 timed runs, device 20 timed runs after a timed cold "
                                        "call*", "*p90_ms: needs >= 10 samples, have 3 (pass --cpu-runs 10)",
                                        "*p99_ms: needs >= 100 samples, have 20 (pass --num-runs 100)"])


def test_a_reference_with_the_cache_off_says_so_in_words():
    from acceptance.sections import ReferenceSection

    identity = ModelIdentity("c" * 64, (("model.safetensors", "w" * 64),), "2.13.0", "4.57.1")
    section = ReferenceSection(mode="off", run_id="run-2", uses=[
        CacheUse("outputs", identity.key("outputs", torch.ones(1, 3, 4, 4)), "computed", reason="off",
                 from_run="run-2")])
    assert section.summary() == "reference: computed in this run (--reference-cache off: neither read nor stored)"


def test_a_part_this_run_stored_and_read_again_is_reused_not_cached_from_an_earlier_run():
    from acceptance.sections import ReferenceSection

    identity = ModelIdentity("c" * 64, (("model.safetensors", "w" * 64),), "2.13.0", "4.57.1")
    key = identity.key("outputs", torch.ones(1, 3, 4, 4))
    section = ReferenceSection(run_id="run-2", uses=[
        CacheUse("outputs", key, "computed", reason="miss", from_run="run-2", stored=True),
        CacheUse("outputs", key, "cached", from_run="run-2")])
    assert section.summary().startswith("reference: computed in this run (miss; cache on), 1 reused in this run"), \
        section.summary()
    section.uses.append(CacheUse("capture", identity.key("capture", torch.ones(1, 3, 4, 4)), "cached",
                                 from_run="run-1"))
    assert section.summary().startswith("reference: 1 part(s) cached from run run-1, 1 computed (miss), "
                                        "1 reused in this run"), section.summary()
