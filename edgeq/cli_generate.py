"""`edgeq generate`: text from a llama GGUF (or its decoder blob) on this host's C runtime, or on a
target's device through its transport (docs/llm.md). Speeds are labelled: `measured` on this host or
a real board, `emulated` under qemu, `modelled` for the board from the target's roofline."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edgeq.errors import EdgeqError


def _remote(target_id: str, blob: Path, prompt: list[int], n: int, sampler: dict, threads: int, chunk: int,
            connect: str | None, device: str | None, timeout: float) -> tuple[dict, dict]:
    """Pushes runner + blob, runs `edgeq_runner --generate`, returns (its JSON, transport description).
    A target that requires signed blobs is refused here as `edgeq deploy` refuses it: a blob packed from a
    GGUF on the fly is unsigned."""
    from edgeq.build import build_runtime
    from edgeq.runner.deploy import _parse_run, resolve, runner_on_device, signing_for

    plan = resolve(target_id, connect, device)
    if plan.target.family == "mcu":
        raise EdgeqError(f"target {plan.target.id} is a microcontroller: a decoder's KV cache and weights need a "
                         "Linux target (rpi5, rpi4, android-arm64, host)")
    signing = signing_for(plan, None)
    build = build_runtime(plan.target)
    args = ["./edgeq_runner", "model.edgeq", "--generate", ",".join(map(str, prompt)), "--tokens", str(n),
            "--chunk", str(chunk), "--threads", str(threads), "--temperature", repr(sampler["temperature"]),
            "--top-k", str(sampler["top_k"]), "--top-p", repr(sampler["top_p"]), "--seed", str(sampler["seed"])]
    with runner_on_device(plan, build.runner, blob, signing) as dev:
        res = dev.run(args, timeout=timeout)
        desc = dev.describe()
    data = _parse_run(plan, res)
    desc["target"] = plan.target.id
    desc["command"] = shlex.join(args[:3] + ["<prompt ids>"] + args[4:])
    return data, desc


def _modelled_tok_s(target_id: str, blob: Path, threads: int) -> float | None:
    """Decode tokens/s on the board from the target's roofline (weights read once per token)."""
    from edgeq.blob import read_blob
    from edgeq.targets.latency import predict_graph
    from edgeq.targets.registry import get_target

    target = get_target(target_id)
    if target.family not in ("arm-linux", "android", "host"):
        return None
    est = predict_graph(target, read_blob(blob).graph, threads)
    return 1.0 / est.total_s if est.total_s > 0 else None


@click.command("generate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--prompt", required=True, help="Text to continue.")
@click.option("-n", "--tokens", "n", type=click.IntRange(1, 1 << 20), default=32, show_default=True,
              help="Tokens to generate.")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--target", "target_id", default=None, help="Run on this target's device (default: this host).")
@click.option("--connect", default=None, help="Device URL (ssh://, adb://, qemu-user://CPU, local://).")
@click.option("--device", default=None, help="A device from devices.toml.")
@click.option("--mode", type=click.Choice(["edgeq", "llamacpp"]), default="edgeq", show_default=True,
              help="Activation mode: int8 absmax per token, or llama.cpp's Q8_K/Q8_0 blocks and fp16 KV cache.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-k", type=click.IntRange(0, 1 << 20), default=40, show_default=True)
@click.option("--top-p", type=float, default=0.95, show_default=True)
@click.option("--seed", type=click.IntRange(0, (1 << 64) - 1), default=0, show_default=True)
@click.option("--chunk", type=click.IntRange(1, 512), default=32, show_default=True,
              help="Prompt tokens per run (the arena holds this many).")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds for the device run.")
@click.option("--json", "as_json", is_flag=True)
def generate(model: Path, prompt: str, n: int, threads: int, target_id: str | None, connect: str | None,
             device: str | None, mode: str, temperature: float, top_k: int, top_p: float, seed: int, chunk: int,
             timeout: float, as_json: bool) -> None:
    """Continue PROMPT with MODEL (a llama GGUF or its decoder blob); report prompt and decode tokens/s."""
    from edgeq.llm.engine import Engine, is_gguf, pack_gguf
    from edgeq.llm.sampling import Sampler

    Sampler(temperature, top_k, top_p, seed)  # validates the settings before anything runs
    blob = pack_gguf(model, mode) if is_gguf(model) else model
    host = target_id in (None, "host") and connect is None and device is None
    eng = Engine(blob, threads=threads if host else 1, chunk=chunk)
    tok = eng.tokenizer()
    ids = tok.encode(prompt)
    eng.check_fits(len(ids) + n - 1)
    sampler = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    result: dict = {"model": str(model), "blob": str(blob), "mode": eng.mode, "prompt_tokens": len(ids),
                    "threads": threads, "sampler": sampler}
    if host:
        g = eng.generate(ids, n, temperature, top_k, top_p, seed)
        result.update(target="host", source="measured", tokens=g.tokens, prompt_s=g.prompt_seconds,
                      decode_s=g.decode_seconds, decode_steps=g.decode_steps,
                      prompt_tok_s=g.prompt_tok_s, decode_tok_s=g.decode_tok_s, arena_bytes=g.arena_bytes,
                      kernel_tier=eng.session.kernel_tier)
    else:
        del eng  # its arena: the run happens on the device
        data, desc = _remote(target_id or "", blob, ids, n, sampler, threads, chunk, connect, device, timeout)
        gen = data["generate"]
        steps = gen["decode_steps"]
        result.update(target=desc["target"], device=desc, source="emulated" if desc.get("emulated") else "measured",
                      tokens=gen["tokens"], prompt_s=gen["prompt_ns"] / 1e9, decode_s=gen["decode_ns"] / 1e9,
                      decode_steps=steps, prompt_tok_s=len(ids) / (gen["prompt_ns"] / 1e9),
                      decode_tok_s=steps / (gen["decode_ns"] / 1e9) if steps and gen["decode_ns"] else 0.0,
                      arena_bytes=data["work_bytes"], kernel_tier=data["kernel_tier"],
                      kernels=sorted({x["kernel"] for x in data["layers"] if x["kernel"] != "ref"}))
        # the roofline models edgeq's SIMD kernels; the llamacpp parity mode runs reference ones
        result["modelled_decode_tok_s"] = _modelled_tok_s(result["target"], blob, threads) if result["mode"] == "edgeq" else None
    result["blob_bytes"] = blob.stat().st_size
    result["text"] = tok.decode(result["tokens"])
    if as_json:
        click.echo(json.dumps(result))
        return
    _print(result, prompt)


def _print(r: dict, prompt: str) -> None:
    console = Console()
    console.print(f"[bold]{prompt}[/bold]{r['text']}", highlight=False)
    t = Table(title=f"edgeq generate: {r['target']} ({r['mode']} mode, {r['threads']} thread(s), "
                    f"kernel tier {r['kernel_tier']})")
    for col in ("", "value", "source"):
        t.add_column(col)
    src = r["source"]
    t.add_row("prompt", f"{r['prompt_tokens']} tokens, {r['prompt_tok_s']:.1f} tok/s", src)
    t.add_row("decode", f"{r['decode_steps']} steps, {r['decode_tok_s']:.1f} tok/s", src)
    if r.get("modelled_decode_tok_s"):
        t.add_row("decode on the board", f"{r['modelled_decode_tok_s']:.1f} tok/s (roofline, weights read per token)",
                  "modelled")
    t.add_row("memory", f"arena {r['arena_bytes'] / 2**20:.2f} MiB + blob {r['blob_bytes'] / 2**20:.2f} MiB (mapped)",
              src)
    console.print(t)
    if src == "emulated":
        console.print("tokens/s under qemu are emulated wall time, not the board's; the modelled row is the estimate")
