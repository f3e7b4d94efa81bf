"""The TransformerLens export of every library program (or those named) against the
interpreter at full depth: 100 sampled inputs each, outputs and every variable after every
ALTA layer (one past the last halting layer); prints sizes, build and run times.

    python benchmarks/export_lens.py [NAME ...] [--inputs N] [--size S]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import LIBRARY, compiled_library  # noqa: E402
from test_export_lens import compare_with_interpreter  # noqa: E402

from alta.framing import encode_batch  # noqa: E402
from alta.interpreter import run  # noqa: E402
from alta.lens import decode_cache, hooked_transformer, lens_tokens  # noqa: E402
from alta.tasks import find_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--size", type=int, default=3, help="sampler size (task's unit)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.names or LIBRARY:
        compiled = compiled_library(name)
        program = compiled.program
        texts = find_task(program).inputs(args.inputs, size=args.size, seed=3)
        layers = min(int(run(program, texts).layers.max()) + 1, program.max_layers)
        longest = int(encode_batch(program, texts).lengths.max())
        start = time.perf_counter()
        model, _ = hooked_transformer(compiled, layers, max_length=longest)
        built = time.perf_counter()
        tokens = lens_tokens(compiled, texts, model)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        ran = time.perf_counter()
        compare_with_interpreter(compiled, texts, layers, decode_cache(cache, compiled, tokens,
                                                                        layers))
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: ok, {len(texts)} inputs, {layers} ALTA layers = {model.cfg.n_layers} "
              f"blocks, n_ctx {model.cfg.n_ctx}, d_model {model.cfg.d_model}, {params / 1e6:.1f} M "
              f"parameters; build {built - start:.1f} s, run {ran - built:.1f} s", flush=True)
        del model, cache


if __name__ == "__main__":
    main()
