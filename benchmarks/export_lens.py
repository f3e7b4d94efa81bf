"""Both exports of every library program (or those named) against the interpreter at full
depth: on N sampled inputs each (default 100), the outputs, and the decoded state after every
layer (every variable at every position, every defined head after attention, which sequences
each layer ran on), of

- the PyTorch model (alta/pytorch.py), checked as `alta verify` checks the Flax model
  (alta.verify with framework="torch");
- the TransformerLens model (alta/lens.py), unrolled one ALTA layer past the last halting
  layer, its `run_with_cache` residuals decoded (alta.lens.decode_cache), inputs of similar
  lengths together, a few per forward pass (`--chunk`; the cache keeps three residuals per
  ALTA layer).

Prints one table row per program as it finishes, with sizes and seconds.

    python benchmarks/export_lens.py [NAME ...] [--inputs N] [--size S] [--chunk C]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import LIBRARY, compiled_library  # noqa: E402
from test_export_lens import compare_with_interpreter  # noqa: E402

from alta.export import run_torch, torch_model  # noqa: E402
from alta.framing import encode_batch  # noqa: E402
from alta.interpreter import run  # noqa: E402
from alta.lens import decode_cache, decoded_hooks, hooked_transformer, lens_tokens  # noqa: E402
from alta.tasks import find_task  # noqa: E402
from alta.verify import verify  # noqa: E402

CACHE_BYTES = 1 << 30  # the residuals one lens forward pass keeps, at most (sets --chunk)


def check_torch(compiled, texts, expected) -> tuple[bool, str]:
    """(outputs equal, states: "yes" or the first divergence)."""
    module = torch_model(compiled)
    outputs = run_torch(compiled, texts, module).outputs == expected.outputs
    report = verify(compiled, texts, model=module, framework="torch")
    return outputs, "yes" if report.ok else report.divergence.format(compiled.program.name)


def chunks(lengths, per_position: int, chunk: int | None):
    """Input indices by length, in runs of `chunk` (default: as many as keep CACHE_BYTES of
    residuals at the run's longest length; TransformerLens pads a run to its longest)."""
    order = [int(i) for i in np.argsort(lengths, kind="stable")]
    run = []
    for i in order:
        full = len(run) == chunk if chunk is not None else \
            (len(run) + 1) * int(lengths[i]) * per_position > CACHE_BYTES
        if run and full:
            yield run
            run = []
        run.append(i)
    if run:
        yield run


def check_lens(compiled, texts, expected, layers: int, chunk: int | None):
    """(outputs equal, states: "yes" or what differs, the model). The layers' blocks share
    their weight tensors (one ALTA layer's worth of memory)."""
    lengths = encode_batch(compiled.program, texts).lengths
    model, _ = hooked_transformer(compiled, layers, max_length=int(lengths.max()))
    keep = decoded_hooks(model, layers)
    outputs, states = True, "yes"
    for rows in chunks(lengths, 4 * (3 * layers + 1) * model.cfg.d_model, chunk):
        part = [texts[i] for i in rows]
        tokens = lens_tokens(compiled, part, model)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=keep)
        trace = decode_cache(cache, compiled, tokens, layers)
        del cache
        outputs &= list(trace.outputs) == [expected.outputs[i] for i in rows]
        try:
            compare_with_interpreter(compiled, part, layers, trace)
        except AssertionError as exc:
            states = f"no: {str(exc).splitlines()[0]}"
    return outputs, states, model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--size", type=int, default=None,
                        help="sampler size, in the task's unit (default: the sampler's)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="inputs per lens forward pass (default: CACHE_BYTES of residuals)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| program | inputs (size) | ALTA layers | PyTorch outputs | PyTorch states | "
          "PyTorch s | lens blocks | n_ctx | lens M params | lens outputs | lens states | "
          "lens s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for name in args.names or LIBRARY:
        compiled = compiled_library(name)
        program = compiled.program
        texts = find_task(program).inputs(args.inputs, size=args.size, seed=3)
        expected = run(program, texts)
        layers = min(int(expected.layers.max()) + 1, program.max_layers + 1)
        start = time.perf_counter()
        torch_outputs, torch_states = check_torch(compiled, texts, expected)
        torch_seconds = time.perf_counter() - start
        start = time.perf_counter()
        lens_outputs, lens_states, model = check_lens(compiled, texts, expected, layers,
                                                      args.chunk)
        lens_seconds = time.perf_counter() - start
        params = sum(p.numel() for p in model.parameters()) / 1e6  # each block's, as exported
        size = "default" if args.size is None else args.size
        print(f"| {name} | {len(texts)} ({size}) | {int(expected.layers.max())} | "
              f"{'yes' if torch_outputs else 'NO'} | {torch_states} | {torch_seconds:.0f} | "
              f"{model.cfg.n_layers} | {model.cfg.n_ctx} | {params:.0f} | "
              f"{'yes' if lens_outputs else 'NO'} | "
              f"{lens_states} | {lens_seconds:.0f} |", flush=True)
        del model


if __name__ == "__main__":
    main()
