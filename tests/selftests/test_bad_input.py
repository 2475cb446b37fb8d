"""The bad-input corpus: every mistake a user can make ends the run at once with one message.

Each case builds one bad input (a broken checkpoint copy, a bad option, a bad
thresholds file or image), runs the acceptance suite on it in a subprocess
exactly as a user would, and asserts: exit code 4 (pytest's usage error), one
``ERROR:`` line naming the problem, a ``fix:`` line naming the remedy, no test
run and no traceback. docs/errors.md lists the same catalogue for users.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from acceptance.loading import PICKLE_FILE, WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[2]
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR  # 4

LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4f1c8f2a6b0d1e7c3a5b9d8e2f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a\nsize 343249832\n")


# ---- builders: each makes one bad input and returns the command-line arguments that use it ----

def copy_checkpoint(tiny: Path, tmp: Path, name: str = "checkpoint") -> Path:
    folder = tmp / name
    shutil.copytree(tiny, folder)
    return folder


def with_json(file_name: str, change: Callable[[dict], object]):
    """A copy of the tiny checkpoint with one of its JSON files edited by ``change``."""
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        folder = copy_checkpoint(tiny, tmp)
        data = json.loads((folder / file_name).read_text())
        change(data)
        (folder / file_name).write_text(json.dumps(data))
        return ["--model-path", str(folder)]
    return build


def with_config(change: Callable[[dict], object]):
    return with_json("config.json", change)


def with_preprocessor(change: Callable[[dict], object]):
    return with_json("preprocessor_config.json", change)


def builtin_cache_is_a_file(tmp, tiny, env):
    """No --model-path on a host whose cache folder cannot be created (here: a file is in the way)."""
    (tmp / "cache").write_text("not a folder")
    env.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
    return []


def with_weights(change: Callable[[dict], object]):
    """A checkpoint whose model.safetensors is rewritten (a valid file) with changed tensors."""
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        folder = copy_checkpoint(tiny, tmp)
        tensors = load_file(folder / WEIGHTS_FILE)
        change(tensors)
        save_file(tensors, folder / WEIGHTS_FILE, metadata={"format": "pt"})
        return ["--model-path", str(folder)]
    return build


def with_weight_bytes(change: Callable[[bytes], bytes]):
    """A checkpoint whose model.safetensors bytes are damaged."""
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        folder = copy_checkpoint(tiny, tmp)
        path = folder / WEIGHTS_FILE
        path.write_bytes(change(path.read_bytes()))
        return ["--model-path", str(folder)]
    return build


def with_file(name: str, content: str | None):
    """A checkpoint with one file replaced (or removed, for None)."""
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        folder = copy_checkpoint(tiny, tmp)
        (folder / name).unlink()
        if content is not None:
            (folder / name).write_text(content)
        return ["--model-path", str(folder)]
    return build


def missing_folder(tmp, tiny, env):
    return ["--model-path", str(tmp / "no-such-checkpoint")]


def weights_file_as_folder(tmp, tiny, env):
    return ["--model-path", str(copy_checkpoint(tiny, tmp) / WEIGHTS_FILE)]


def parent_folder(tmp, tiny, env):
    copy_checkpoint(tiny, tmp, "models/dinov3-vitb16")
    return ["--model-path", str(tmp / "models")]


def pickle_only(tmp, tiny, env):
    folder = copy_checkpoint(tiny, tmp)
    torch.save(load_file(folder / WEIGHTS_FILE), folder / PICKLE_FILE)
    (folder / WEIGHTS_FILE).unlink()
    return ["--model-path", str(folder)]


def no_weights(tmp, tiny, env):
    folder = copy_checkpoint(tiny, tmp)
    (folder / WEIGHTS_FILE).unlink()
    return ["--model-path", str(folder)]


def shard_missing(tmp, tiny, env):
    folder = copy_checkpoint(tiny, tmp)
    names = load_file(folder / WEIGHTS_FILE).keys()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        name: f"model-0000{1 + i % 2}-of-00002.safetensors" for i, name in enumerate(names)}}))
    (folder / WEIGHTS_FILE).rename(folder / "model-00001-of-00002.safetensors")
    return ["--model-path", str(folder)]


def header_not_json(data: bytes) -> bytes:
    return (16).to_bytes(8, "little") + b"{not json at all" + data[8:]


def thresholds_with(text: str | None = None, edit: Callable[[str], str] | None = None):
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        path = tmp / "thresholds.toml"
        original = (ROOT / "thresholds.toml").read_text()
        path.write_text(text if text is not None else edit(original))
        return ["--model-path", str(tiny), "--thresholds", str(path)]
    return build


def replacing(old: str, new: str) -> Callable[[str], str]:
    """An edit of the shipped file: the first ``old`` becomes ``new`` (and ``old`` must be there)."""
    def edit(text: str) -> str:
        assert old in text, f"{old!r} is not in the shipped thresholds.toml"
        return text.replace(old, new, 1)
    return edit


def without_table(header: str) -> Callable[[str], str]:
    """An edit of the shipped file: the table ``header`` and its lines, up to the next blank line, removed."""
    def edit(text: str) -> str:
        edited = re.sub(rf"(?m)^{re.escape(header)}\n(?:[^\n]+\n)*", "", text, count=1)
        assert edited != text, f"{header} is not in the shipped thresholds.toml"
        return edited
    return edit


def peak_table(text: str, how: str = "option"):
    """A peak FLOP table file, given by --peak-flops or by DINOV3_PEAK_FLOPS."""
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        path = tmp / "peak_flops.toml"
        path.write_text(text)
        if how == "environment":
            env.setenv("DINOV3_PEAK_FLOPS", str(path))
            return ["--model-path", str(tiny)]
        return ["--model-path", str(tiny), "--peak-flops", str(path)]
    return build


def thresholds_bytes(content: bytes):
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        (tmp / "thresholds.toml").write_bytes(content)
        return ["--model-path", str(tiny), "--thresholds", str(tmp / "thresholds.toml")]
    return build


def image_file(content: bytes | None, name: str = "picture.png"):
    def build(tmp: Path, tiny: Path, env) -> list[str]:
        path = tmp / name
        if content is not None:
            path.write_bytes(content)
        return ["--model-path", str(tiny), "--image", str(path)]
    return build


def truncated_png(tmp, tiny, env):
    from PIL import Image
    path = tmp / "cut.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    return ["--model-path", str(tiny), "--image", str(path)]


def image_folder(tmp, tiny, env):
    return ["--model-path", str(tiny), "--image", str(tmp)]


def options(*args: str):
    def build(tmp, tiny, env) -> list[str]:
        return ["--model-path", str(tiny), *args]
    return build


def environment(name: str, value: str):
    def build(tmp, tiny, env) -> list[str]:
        env.setenv(name, value)
        return ["--model-path", str(tiny)]
    return build


def report_dir_is_a_file(tmp, tiny, env):
    (tmp / "taken").write_text("a file, not a folder")
    return ["--model-path", str(tiny), "--report-dir", str(tmp / "taken")]


def dump_dir_is_a_file(tmp, tiny, env):
    (tmp / "dump").write_text("a file, not a folder")
    return ["--model-path", str(tiny), "--dump", str(tmp / "dump")]


def two_cards(*args: str):
    def build(tmp, tiny, env) -> list[str]:
        return ["-p", "tests.selftests.plugins.two_cuda_cards", "--model-path", str(tiny), *args]
    return build


@dataclass(frozen=True)
class Case:
    build: Callable[..., list[str]]
    problem: str  # a fragment of the ERROR: line(s)
    fix: str  # a fragment of the fix: line
    #: the good checkpoint the build starts from (a fixture of conftest.py): the tiny ViT unless a family differs
    checkpoint: str = "tiny_checkpoint"


NAN = float("nan")  # json.dumps writes it as NaN, which Python's json (and transformers) reads back


CASES = {
    # --- checkpoints (--model-path) ---
    "folder-missing": Case(missing_folder, "does not exist (or is not a folder)", "pass --model-path to a local clone"),
    "file-not-folder": Case(weights_file_as_folder, "model.safetensors is a file; the suite needs the checkpoint "
                            "folder", "pass the folder that holds it: --model-path"),
    "config-missing": Case(with_file("config.json", None), "config.json is missing", "folder that holds config.json"),
    "config-one-level-down": Case(parent_folder, "(found one in", "folder that holds config.json"),
    "config-not-json": Case(with_file("config.json", "{'model_type': dinov3_vit"), "config.json is not valid JSON",
                            "re-download config.json"),
    "config-not-object": Case(with_file("config.json", "[1, 2, 3]"), "does not hold a JSON object",
                              "re-download config.json"),
    "config-lfs-pointer": Case(with_file("config.json", LFS_POINTER), "config.json is a Git LFS pointer",
                               "git lfs pull"),
    "config-other-model-type": Case(with_config(lambda c: c.update(model_type="dinov2")),
                                    "has model_type 'dinov2'; this suite validates dinov3_convnext, dinov3_vit",
                                    "a DINOv3 ConvNeXt checkpoint (e.g. facebook/dinov3-convnext-tiny-pretrain-"
                                    "lvd1689m) or a DINOv3 ViT checkpoint"),
    "config-no-model-type": Case(with_config(lambda c: c.pop("model_type")), "has model_type None",
                                 "a DINOv3 ViT checkpoint"),
    "config-size-not-an-integer": Case(with_config(lambda c: c.update(hidden_size="wide")),
                                       "hidden_size must be a positive integer, got 'wide'",
                                       "or set hidden_size to a positive integer"),
    "config-size-zero": Case(with_config(lambda c: c.update(num_hidden_layers=0)),
                             "num_hidden_layers must be a positive integer, got 0", "re-download config.json"),
    "config-bad-value": Case(with_config(lambda c: c.update(drop_path_rate="none")),
                             "cannot build a dinov3_vit model", "compare the values you edited"),
    "config-heads-do-not-divide": Case(with_config(lambda c: c.update(num_attention_heads=3)),
                                       "hidden_size 64 is not divisible by num_attention_heads 3",
                                       "re-download config.json"),
    # every other field that shapes the model, checked before one is built (issue 19)
    "config-head-size-not-rope": Case(with_config(lambda c: c.update(num_attention_heads=32)),
                                      "hidden_size 64 / num_attention_heads 32 gives heads of 2 channels; DINOv3's "
                                      "2-D rotary position embedding needs a multiple of 4",
                                      "re-download config.json from the model repository (ViT-B/16: 768 and 12"),
    "config-channels-not-rgb": Case(with_config(lambda c: c.update(num_channels=1)),
                                    "config.json: num_channels must be 3 (the suite feeds RGB images), got 1",
                                    "or set num_channels to 3"),
    "config-norm-eps-negative": Case(with_config(lambda c: c.update(layer_norm_eps=-1e-5)),
                                     "config.json: layer_norm_eps must be a positive finite number, got -1e-05",
                                     "or set layer_norm_eps to a positive finite number"),
    "config-rope-theta-negative": Case(with_config(lambda c: c.update(rope_theta=-100.0)),
                                       "config.json: rope_theta must be a positive finite number, got -100.0",
                                       "or set rope_theta to a positive finite number"),
    "config-layer-scale-nan": Case(with_config(lambda c: c.update(layerscale_value=NAN)),
                                   "config.json: layerscale_value must be a finite number, got nan",
                                   "or set layerscale_value to a finite number"),
    "config-switch-not-boolean": Case(with_config(lambda c: c.update(use_gated_mlp="false")),
                                      "config.json: use_gated_mlp must be true or false, got 'false'",
                                      "or set use_gated_mlp to true or false"),
    "config-activation-unknown": Case(with_config(lambda c: c.update(hidden_act="swishy")),
                                      "config.json: hidden_act must be an activation transformers knows (e.g. gelu, "
                                      "silu), got 'swishy'", "re-download config.json"),
    "config-stages-differ": Case(with_config(lambda c: c.update(depths=[1, 1, 2])),
                                 "config.json: hidden_sizes has 4 stages but depths 3",
                                 "re-download config.json from the model repository (ConvNeXt-T",
                                 checkpoint="tiny_convnext_checkpoint"),
    "weights-lfs-pointer": Case(with_file(WEIGHTS_FILE, LFS_POINTER),
                                "model.safetensors is a Git LFS pointer, not the weights",
                                "git lfs install && git lfs pull"),
    "weights-truncated": Case(with_weight_bytes(lambda data: data[: len(data) * 2 // 3]),
                              "not a valid safetensors file: it is truncated", "download model.safetensors again"),
    "weights-trailing-bytes": Case(with_weight_bytes(lambda data: data + b"\0" * 100),
                                   "100 bytes after the last tensor", "download model.safetensors again"),
    "weights-empty": Case(with_weight_bytes(lambda data: b""), "it is only 0 bytes long",
                          "download model.safetensors again"),
    "weights-html-page": Case(with_weight_bytes(lambda data: b"<!DOCTYPE html><title>Sign in</title>"),
                              "not a safetensors file at all", "download model.safetensors again"),
    "weights-header-not-json": Case(with_weight_bytes(header_not_json), "its header is not valid JSON",
                                    "download model.safetensors again"),
    "weights-key-missing": Case(with_weights(lambda t: t.pop("layer.0.mlp.up_proj.weight")),
                                "do not match its config.json: 1 missing (layer.0.mlp.up_proj.weight)",
                                "use the config.json published with these weights"),
    "weights-key-unexpected": Case(with_weights(lambda t: t.update({"head.weight": torch.zeros(10, 64)})),
                                   "do not match its config.json: 1 unexpected (head.weight)",
                                   "use the config.json published with these weights"),
    "weights-wrong-shape": Case(with_weights(lambda t: t.update({"layer.1.mlp.up_proj.weight": torch.zeros(96, 64)})),
                                "1 with the wrong shape (layer.1.mlp.up_proj.weight is [96, 64], "
                                "config gives [128, 64])",
                                "use the config.json published with these weights"),
    "config-of-another-size": Case(with_config(lambda c: c.update(num_hidden_layers=3)),
                                   "17 missing (layer.2.", "of another size"),
    "weights-pickle-only": Case(pickle_only, "holds only pytorch_model.bin, a pickle (a pickle can run arbitrary code "
                                "when it is loaded)", "or pass --allow-pickle"),
    "weights-none": Case(no_weights, "no model.safetensors in", "download model.safetensors"),
    "weights-shard-missing": Case(shard_missing, "lists shards that are missing: model-00002-of-00002.safetensors",
                                  "download every shard"),
    "preprocessor-not-json": Case(with_file("preprocessor_config.json", "{size: 224}"),
                                  "preprocessor_config.json is not valid JSON",
                                  "or delete it to use the documented DINOv3 defaults"),
    "preprocessor-not-object": Case(with_file("preprocessor_config.json", '"224x224"'),
                                    "preprocessor_config.json does not hold a JSON object", "re-download"),
    "preprocessor-lfs-pointer": Case(with_file("preprocessor_config.json", LFS_POINTER),
                                     "preprocessor_config.json is a Git LFS pointer", "git lfs pull"),
    "preprocessor-bad-mean": Case(with_preprocessor(lambda p: p.update(image_mean=[0.5, 0.5])),
                                  "preprocessor_config.json: image_mean must be a list of 3 finite numbers (R, G, B), "
                                  "got [0.5, 0.5]", "re-download preprocessor_config.json"),
    # every field the suite uses, checked at start before any model is built (issue 19)
    "preprocessor-mean-not-finite": Case(with_preprocessor(lambda p: p.update(image_mean=[NAN, 0.456, 0.406])),
                                         "image_mean must be a list of 3 finite numbers (R, G, B), got [nan, ",
                                         "set image_mean to a list of 3 finite numbers"),
    "preprocessor-std-zero": Case(with_preprocessor(lambda p: p.update(image_std=[0.229, 0, 0.225])),
                                  "preprocessor_config.json: image_std must be a list of 3 positive finite numbers "
                                  "(R, G, B), got [0.229, 0, 0.225]", "or delete it to use the documented DINOv3"),
    "preprocessor-size-zero": Case(with_preprocessor(lambda p: p.update(size={"height": 0, "width": 224})),
                                   "preprocessor_config.json: size.height must be a positive multiple of 16 (the "
                                   "model's input stride), got 0", "set size.height to a positive multiple of 16"),
    "preprocessor-size-off-stride": Case(with_preprocessor(lambda p: p.update(size={"height": 224, "width": 230})),
                                         "size.width must be a positive multiple of 16 (the model's input stride), "
                                         "got 230", "set size.width to a positive multiple of 16"),
    "preprocessor-size-off-stride-convnext": Case(
        with_preprocessor(lambda p: p.update(size={"height": 240, "width": 240})),
        "size.height must be a positive multiple of 32 (the model's input stride), got 240",
        "set size.height to a positive multiple of 32", checkpoint="tiny_convnext_checkpoint"),
    "preprocessor-size-not-height-width": Case(with_preprocessor(lambda p: p.update(size=224)),
                                               'preprocessor_config.json: size must be {"height": H, "width": W}',
                                               're-download preprocessor_config.json'),
    "preprocessor-rescale-zero": Case(with_preprocessor(lambda p: p.update(rescale_factor=0)),
                                      "preprocessor_config.json: rescale_factor must be a positive finite number, "
                                      "got 0", "set rescale_factor to a positive finite number"),
    "preprocessor-resample-unknown": Case(with_preprocessor(lambda p: p.update(resample=7)),
                                          "preprocessor_config.json: resample must be one of PIL's filters 0 "
                                          "(nearest), 1 (lanczos), 2 (bilinear)", "set resample to one of"),
    "preprocessor-switch-not-boolean": Case(with_preprocessor(lambda p: p.update(do_normalize="yes")),
                                            "preprocessor_config.json: do_normalize must be true or false, got 'yes'",
                                            "set do_normalize to true or false"),
    "preprocessor-unknown-type": Case(with_preprocessor(lambda p: p.update(image_processor_type="CLIPImageProcessor")),
                                      "preprocessor_config.json: image_processor_type must be one of "
                                      "DINOv3ViTImageProcessorFast, DINOv3ViTImageProcessor, got 'CLIPImageProcessor'",
                                      "re-download preprocessor_config.json"),
    "builtin-cache-not-writable": Case(builtin_cache_is_a_file, "the built-in model cannot be written to",
                                       "set XDG_CACHE_HOME to a writable folder"),
    # --- devices ---
    "device-unknown": Case(options("--device", "tpu"), "unknown device 'tpu'", "pass a valid --device DEVICE"),
    "device-unknown-env": Case(environment("DINOV3_DEVICE", "gpu"),
                               "(from environment variable DINOV3_DEVICE): unknown device 'gpu'", "--device DEVICE"),
    "device-index-not-a-number": Case(options("--device", "npu:first"), "bad device index in 'npu:first'",
                                      "--device DEVICE"),
    "device-index-on-cpu": Case(options("--device", "cpu:1"), "cpu and mps take no index", "--device DEVICE"),
    "device-not-here": Case(options("--device", "cuda"), "--device cuda was requested but is not usable here",
                            "install a CUDA (or ROCm) build of torch"),
    "device-index-out-of-range": Case(two_cards("--device", "cuda:5"), "--device cuda:5 was requested but only 2 "
                                      "cuda device(s) are visible", "use an index below 2"),
    # --- other options ---
    "dtype-unknown": Case(options("--dtype", "float64"), "expected one of float32, bfloat16, float16, got 'float64'",
                          "--dtype DTYPE"),
    "num-runs-zero": Case(options("--num-runs", "0"), "expected a positive integer, got 0", "--num-runs N"),
    "num-runs-negative-env": Case(environment("DINOV3_NUM_RUNS", "-5"),
                                  "(from environment variable DINOV3_NUM_RUNS): expected a positive integer, got -5",
                                  "--num-runs N"),
    "num-runs-not-a-number": Case(options("--num-runs", "twenty"), "expected a positive integer, got 'twenty'",
                                  "--num-runs N"),
    "batch-size-zero": Case(options("--batch-size", "0"), "expected a positive integer, got 0", "--batch-size N"),
    "warmup-negative": Case(options("--warmup", "-1"), "expected a non-negative integer, got -1", "--warmup N"),
    "allow-pickle-env-not-boolean": Case(environment("DINOV3_ALLOW_PICKLE", "maybe"),
                                         "expected 1/0, true/false, yes/no or on/off, got 'maybe'",
                                         "set DINOV3_ALLOW_PICKLE to 1 or 0"),
    "sweep-resolutions-off-stride": Case(options("--sweep-resolutions", "224,300,100"),
                                         "--sweep-resolutions: 300, 100 are not multiples of the model's input "
                                         "stride 16", "set --sweep-resolutions to multiples of 16 (e.g. 112, 224)"),
    "report-dir-is-a-file": Case(report_dir_is_a_file, "cannot be written", "pass --report-dir DIR to a folder"),
    "dump-dir-is-a-file": Case(dump_dir_is_a_file, "msprobe dump folder", "pass --dump DIR to a folder you can write"),
    "ops-unknown": Case(options("--ops", "always"), "expected one of auto, on, off, got 'always'", "--ops MODE"),
    # --- thresholds file ---
    "thresholds-missing": Case(options("--thresholds", "/no/such/thresholds.toml"),
                               "thresholds file /no/such/thresholds.toml does not exist", "restore thresholds.toml"),
    "thresholds-a-folder": Case(lambda tmp, tiny, env: ["--model-path", str(tiny), "--thresholds", str(tmp)],
                                "cannot be read", "check the file's permissions"),
    "thresholds-not-toml": Case(thresholds_with("[accuracy.float32\nmax_relative_error = 0.01\n"),
                                "is not valid TOML", "fix the TOML syntax"),
    "thresholds-not-utf8": Case(thresholds_bytes(b"# caf\xe9 (latin-1)\n"), "cannot be read",
                                "UTF-8 TOML"),
    "thresholds-value-not-a-number": Case(
        thresholds_with(edit=lambda text: text.replace("max_relative_error = 0.01    #",
                                                       'max_relative_error = "1%"  #')),
        "accuracy.float32.max_relative_error must be a number, got '1%'", "set accuracy.float32.max_relative_error "
        "to a number"),
    "thresholds-value-nan": Case(thresholds_with(edit=lambda text: text.replace("min_cosine = 0.99            #",
                                                                                "min_cosine = nan  #", 1)),
                                 "accuracy.float32.min_cosine must be a number, got nan", "to a number"),
    "thresholds-key-missing": Case(thresholds_with(edit=lambda text: text.replace("max_pooler_cls_abs_diff = 0.0", "")),
                                   "missing key consistency.max_pooler_cls_abs_diff (a number)",
                                   "add `max_pooler_cls_abs_diff = <number>` under [consistency]"),
    "thresholds-table-missing": Case(thresholds_with(edit=without_table("[accuracy.float16]")),
                                     "missing table [accuracy.float16]", "add [accuracy.float16]"),
    # every other table is checked at start too, not when (or if) the test that reads it runs
    "thresholds-sweep-not-a-list": Case(thresholds_with(edit=replacing("batches = [1, 2]\n", 'batches = "1,2"\n')),
                                        "sweep.quick.batches must be a non-empty list of positive integers, "
                                        "got '1,2'", "set sweep.quick.batches to a non-empty list"),
    "thresholds-sweep-off-stride": Case(thresholds_with(edit=replacing("resolutions = [224, 448]",
                                                                       "resolutions = [224, 440]")),
                                        "[sweep.quick] resolutions: 440 is not a multiple of the model's input "
                                        "stride 16", "set [sweep.quick] resolutions (or pass --sweep-resolutions) "
                                        "to multiples of 16"),
    "thresholds-sweep-runs-zero": Case(thresholds_with(edit=replacing("num_runs = 10", "num_runs = 0")),
                                       "sweep.full.num_runs must be a positive integer, got 0",
                                       "set sweep.full.num_runs to a positive integer"),
    "thresholds-determinism-string": Case(thresholds_with(edit=replacing("max_abs_spread = 0.0",
                                                                         'max_abs_spread = "0"')),
                                          "determinism.max_abs_spread must be a non-negative number, got '0'",
                                          "set determinism.max_abs_spread to a non-negative number"),
    "thresholds-soak-string": Case(thresholds_with(edit=replacing("max_drift = 0.0", 'max_drift = "zero"')),
                                   "soak.max_drift must be a non-negative number, got 'zero'",
                                   "set soak.max_drift to a non-negative number"),
    "thresholds-regression-boolean": Case(
        thresholds_with(edit=replacing("max_latency_regression_percent = 15.0",
                                       "max_latency_regression_percent = true")),
        "regression.max_latency_regression_percent must be a non-negative number, got True",
        "set regression.max_latency_regression_percent to a non-negative number"),
    "thresholds-signoff-not-a-list": Case(
        thresholds_with(edit=lambda text: re.sub(r"(?m)^required_markers = .*$", 'required_markers = "accuracy"',
                                                 text)),
        "signoff.required_markers must be a list of non-empty strings, got 'accuracy'",
        "set signoff.required_markers to a list"),
    "thresholds-latency-string": Case(thresholds_with(edit=replacing("max_p50_ms = 11.2", 'max_p50_ms = "11"')),
                                      "latency entry 1.max_p50_ms must be a non-negative number, got '11'",
                                      "set latency entry 1.max_p50_ms to a non-negative number"),
    "thresholds-layers-missing": Case(thresholds_with(edit=without_table("[layers.float32]")),
                                      "missing table [layers.float32]",
                                      "add [layers.float32] with max_relative_error, min_cosine"),
    "thresholds-fingerprint-string": Case(thresholds_with(edit=replacing("max_distance_decades = 1.0",
                                                                         'max_distance_decades = "1"')),
                                          "fingerprint.max_distance_decades must be a non-negative number, got '1'",
                                          "set fingerprint.max_distance_decades to a non-negative number"),
    "thresholds-unknown-key": Case(thresholds_with(edit=replacing("max_drift = 0.0", "max_drfit = 0.0")),
                                   "unknown key(s) max_drfit under [soak]",
                                   "use only max_drift, max_memory_growth_bytes under [soak]"),
    "thresholds-unknown-table": Case(thresholds_with(edit=replacing("[determinism]", "[determinsm]")),
                                     "unknown top-level table(s) or key(s) determinsm",
                                     "use only the tables accuracy, layers, consistency"),
    # --- the peak FLOP table (--peak-flops) ---
    "peak-flops-missing": Case(options("--peak-flops", "/no/such/peak_flops.toml"),
                               "peak FLOP table /no/such/peak_flops.toml does not exist", "restore peak_flops.toml"),
    "peak-flops-value-not-a-number": Case(peak_table('[[peak]]\ndevice = "Ascend910B*"\nfloat16 = "376"\n'),
                                          "peak entry 1.float16 must be a positive number, got '376'",
                                          "set peak entry 1.float16 to a positive number"),
    "peak-flops-unknown-key-env": Case(peak_table('[[peak]]\ndevice = "*H100*"\nfp16 = 989.0\n', "environment"),
                                       "unknown key(s) fp16 under [[peak]] entry 1",
                                       "use only device, float32, bfloat16, float16 under [[peak]] entry 1"),
    # --- the input image ---
    "image-missing": Case(image_file(None), "picture.png does not exist", "pass --image to an existing image file"),
    "image-not-an-image": Case(image_file(b"name,score\ncat,0.9\n", "scores.png"), "cannot be read as an image",
                               "a PNG, JPEG or other file Pillow can open"),
    "image-empty": Case(image_file(b""), "is empty (0 bytes)", "copied in full"),
    "image-truncated": Case(truncated_png, "cannot be read as an image", "a PNG, JPEG"),
    "image-a-folder": Case(image_folder, "is a folder, not an image file", "one image file inside it"),
}


@pytest.fixture
def suite(run_suite, monkeypatch):
    """run_suite, with the repository importable before pytest starts (for ``-p tests.selftests.plugins.*``)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return run_suite


def assert_one_clear_error(result: pytest.RunResult, problem: str, fix: str) -> None:
    """Exit code 4, one ERROR line with the problem, a fix line, no traceback, no test run."""
    out, err = result.stdout.str(), result.stderr.str()
    assert result.ret == USAGE_ERROR, f"exit code {result.ret}, expected {USAGE_ERROR}\n{out}\n{err}"
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, f"expected one ERROR line, got {errors}\n{err}"
    message = err[err.index("ERROR: "):]
    problem_text, _, fix_text = message.partition("\n  fix: ")
    assert problem in problem_text, f"problem {problem!r} not in {problem_text!r}"
    assert fix in fix_text, f"fix {fix!r} not in {fix_text!r}"
    assert "Traceback" not in out + err
    assert " passed" not in out and " failed" not in out, f"tests ran:\n{out}"


@pytest.mark.parametrize("name", CASES)
def test_bad_input_ends_the_run_with_one_clear_message(name, suite, tiny_checkpoint, tiny_convnext_checkpoint,
                                                       tmp_path, monkeypatch):
    # both checkpoints are requested here, not looked up in the test: session fixtures are built before
    # pytester snapshots sys.modules (a model class imported after it would be imported twice)
    case = CASES[name]
    good = {"tiny_checkpoint": tiny_checkpoint, "tiny_convnext_checkpoint": tiny_convnext_checkpoint}
    args = case.build(tmp_path, good[case.checkpoint], monkeypatch)
    result = suite(*args)
    assert_one_clear_error(result, case.problem, case.fix)


def test_corpus_covers_the_catalogue():
    """Every kind of input in docs/errors.md has cases here (and every case id is documented)."""
    catalogue = (ROOT / "docs" / "errors.md").read_text()
    undocumented = [name for name in CASES if f"`{name}`" not in catalogue]
    assert not undocumented, f"cases missing from docs/errors.md: {undocumented}"


# ---- the command exactly as a user types it, from the repository root ----

@pytest.fixture
def user_run(python_run):
    """``pytest ARGS`` in the repository root, as a user's shell starts it."""
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return python_run("-m", "pytest", "-p", "no:cacheprovider", *args, env=env, timeout=300)

    return run


@pytest.fixture
def lfs_checkpoint(tiny_checkpoint, tmp_path) -> Path:
    """A checkpoint cloned without `git lfs`: config.json is there, model.safetensors is the pointer text."""
    folder = copy_checkpoint(tiny_checkpoint, tmp_path, "dinov3-vitb16-pretrain-lvd1689m")
    (folder / WEIGHTS_FILE).write_text(LFS_POINTER)
    return folder


@pytest.mark.parametrize("form", ["space", "equals", "with-test-path", "environment"])
def test_lfs_pointer_from_the_command_line(form, lfs_checkpoint, user_run):
    """`pytest --model-path DIR` (and every other form) on a folder outside the repository, from its root.

    (With a space, pytest first takes DIR for a test path and looks for pytest.ini there; the installed
    plugin then runs the command again with the value joined: fixtures/plugin.py.)
    """
    args = {"space": ["--model-path", str(lfs_checkpoint)], "equals": [f"--model-path={lfs_checkpoint}"],
            "with-test-path": ["--model-path", str(lfs_checkpoint), "tests/acceptance"],
            "environment": []}[form]
    result = user_run(*args, env={"DINOV3_MODEL_PATH": str(lfs_checkpoint)} if form == "environment" else None)
    assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
    assert result.stderr.startswith(f"ERROR: {lfs_checkpoint}/model.safetensors is a Git LFS pointer, not the weights")
    assert f"fix: run `git lfs install && git lfs pull` inside {lfs_checkpoint}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["config.json", WEIGHTS_FILE])
def test_unreadable_files_are_named(name, tiny_checkpoint, tmp_path, monkeypatch):
    """Permission errors (not reproducible as root, so raised here by hand) name the file and the fix."""
    from acceptance.errors import CheckpointError
    from acceptance.loading import inspect_checkpoint

    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(CheckpointError, match=f"{name} cannot be read \\(Permission denied\\)") as raised:
        inspect_checkpoint(folder)
    assert "permissions" in raised.value.fix
