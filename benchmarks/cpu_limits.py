"""What bounds the speedrun on this CPU: the peak rate, and each choice of the training step.

Usage:
    python benchmarks/cpu_limits.py             # minutes: torch.compile compiles each network
    python benchmarks/cpu_limits.py --no-compile
    python benchmarks/cpu_limits.py --quick     # the plumbing, in seconds

``make cpu-limits``. Three measurements, each the median of timed repetitions after a
warm-up, on random data (the numbers are speeds, not accuracies):

* **peak**: a large square matrix product in bfloat16 and in float32, on 1 thread and
  on all cores: the most multiply-adds per second this CPU sustains, the ceiling any
  network's training approaches. A network's *floor* is its training multiply-adds
  (``digitlab.mnist.speedrun.training_macs``) over that peak.
* **steps**: the training step (forward, loss, backward, optimiser) of each speedrun
  tier's network, of the anchor and of two of the journal reproduction's networks (its
  plain CNN and its dropout + batch-norm one, the dearest), on batches drawn from one
  tensor as the speedrun does, with one choice changed at a time: float32, bfloat16,
  channels-last, twice the batch, one thread, ``torch.compile`` (its compile seconds
  reported apart). For each: seconds per epoch of 60,000 digits and the multiply-add
  rate reached, as a fraction of the peak.
* **data path**: per epoch, the shuffled indexing of one normalised tensor and, for a
  recipe that augments, the affine transform of every batch, next to the step.

Writes ``results/speedrun/cpu_limits.json`` (``--quick``, ``--no-compile``: named
beside it, e.g. ``cpu_limits_quick_no-compile.json``).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from digitlab import devices, paths
from digitlab.cli import add_verbose_option, cli, configure_logging, script_parser
from digitlab.engine.recipe import batch_transform, make_optimizer
from digitlab.mnist import journal
from digitlab.mnist.recipes import RECIPES
from digitlab.mnist.speedrun import ANCHOR, ANCHOR_NETWORK, TIERS, macs_per_image, training_macs
from digitlab.repro import save_metrics

EPOCH = 60_000


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    add_verbose_option(parser)
    return parser.parse_args(argv)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: kernels, caches, a compiled graph
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def gemm_rate(n: int, dtype: torch.dtype, threads: int, repeats: int) -> float:
    """Billions of multiply-adds per second of an n x n x n matrix product."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return n ** 3 / median_seconds(lambda: a @ b, repeats) / 1e9


def peak(quick: bool) -> dict:
    n, repeats, cores = (256, 3, torch.get_num_threads()) if quick else (
        2048, 10, torch.get_num_threads())
    rates = {f"{name} {threads} thread{'s' if threads > 1 else ''}":
             gemm_rate(n, dtype, threads, repeats)
             for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))
             for threads in sorted({1, cores})}
    torch.set_num_threads(cores)
    return {"n": n, "gmacs": rates, "peak_gmacs": max(rates.values())}


def step_seconds(network, recipe, *, precision: str, channels_last: bool, batch: int,
                 threads: int, compiled: bool, steps: int) -> tuple[float, float]:
    """(median seconds of one training step, seconds spent compiling) on random digits."""
    torch.set_num_threads(threads)
    model = network.build(seed=0)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(recipe, model.parameters())
    forward = torch.compile(model) if compiled else model
    x, y = torch.randn(4 * batch, 1, 28, 28), torch.randint(0, 10, (4 * batch,))
    # as a recipe runs: bfloat16 only where the CPU computes it natively
    dtype = devices.autocast_dtype(torch.device("cpu"), precision)
    generator = torch.Generator().manual_seed(0)
    model.train()

    def step():
        index = torch.randint(0, len(y), (batch,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = forward(x[index])
        F.cross_entropy(logits.float(), y[index]).backward()
        optimizer.step()

    start = time.perf_counter()
    step()  # a compiled model compiles here
    compile_seconds = time.perf_counter() - start if compiled else 0.0
    return median_seconds(step, steps), compile_seconds


def settings(recipe, cores: int, with_compile: bool) -> dict[str, dict]:
    """The recipe's own step, and one choice changed at a time."""
    own = {"precision": recipe.precision, "channels_last": recipe.channels_last,
           "batch": recipe.batch_size, "threads": cores, "compiled": False}
    layout = "no channels-last" if recipe.channels_last else "channels-last"
    changes = {"as the recipe": {}, "float32": {"precision": "fp32"},
               "bfloat16": {"precision": "bf16"},
               layout: {"channels_last": not recipe.channels_last},
               "twice the batch": {"batch": 2 * recipe.batch_size}, "1 thread": {"threads": 1}}
    if with_compile:
        changes["torch.compile"] = {"compiled": True}
    chosen = {name: {**own, **change} for name, change in changes.items()}
    # a change the recipe already has would only time the same step twice
    return {name: s for name, s in chosen.items() if name == "as the recipe" or s != own}


def steps_table(quick: bool, peak_gmacs: float, with_compile: bool) -> dict:
    cores = torch.get_num_threads()
    networks = {name: RECIPES[TIERS[t].recipe_name] for name, t in
                (("fast99", "99.0"), ("fast995", "99.5"), ("fast997", "99.7"))}
    networks["anchor"] = (ANCHOR_NETWORK, ANCHOR)
    # The journal reproduction's cheapest and dearest networks (make reproduce), SGD as run.
    for variant in ("plain", "dropout + batch-norm"):
        networks[f"journal {variant}"] = (journal.variant_network(variant),
                                          journal.recipe("sgd", 0.01, journal.VARIANT_EPOCHS))
    if quick:
        networks = {"fast99": networks["fast99"]}
    out = {}
    for name, (network, recipe) in networks.items():
        macs = macs_per_image(network.build(seed=0))
        rows = {}
        for label, s in settings(recipe, cores, with_compile).items():
            seconds, compile_seconds = step_seconds(network, recipe, steps=3 if quick else 20,
                                                    **{k: s[k] for k in ("precision",
                                                       "channels_last", "batch", "threads",
                                                       "compiled")})
            rate = training_macs(macs, s["batch"], 1) / seconds / 1e9
            rows[label] = {**s, "step_seconds": seconds, "epoch_seconds": seconds * EPOCH /
                           s["batch"], "gmacs": rate, "of_peak": rate / peak_gmacs,
                           "compile_seconds": compile_seconds}
            print(f"  {name:>24} {label:<16} {rows[label]['epoch_seconds']:6.2f} s/epoch, "
                  f"{rate:5.1f} GMAC/s ({rate / peak_gmacs:.0%} of peak)"
                  + (f", compiled in {compile_seconds:.0f} s" if compile_seconds else ""),
                  flush=True)
        floor = training_macs(macs, EPOCH, recipe.epochs) / peak_gmacs / 1e9
        out[name] = {"macs_per_image": macs, "epochs": recipe.epochs, "steps": rows,
                     "floor_seconds": floor}
    torch.set_num_threads(cores)
    return out


def data_path(quick: bool) -> dict:
    """Seconds per epoch of indexing shuffled batches from one tensor, and of augmenting them."""
    network, recipe = RECIPES[TIERS["99.5"].recipe_name]
    n = 2_000 if quick else EPOCH
    x, generator = torch.randn(n, 1, 28, 28), torch.Generator().manual_seed(0)
    transform = batch_transform(recipe)

    def index_all():
        for index in torch.randperm(n, generator=generator).split(recipe.batch_size):
            x[index]

    def augment_all():
        for index in torch.randperm(n, generator=generator).split(recipe.batch_size):
            transform(x[index], generator)

    scale = EPOCH / n
    return {"batch": recipe.batch_size,
            "index_seconds": median_seconds(index_all, 1 if quick else 3) * scale,
            "augment_seconds": (median_seconds(augment_all, 1 if quick else 3) * scale
                                if transform is not None else None)}


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    print(f"{devices.device_name(torch.device('cpu'))}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    limits = peak(args.quick)
    print("peak: " + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in limits["gmacs"].items()))
    steps = steps_table(args.quick, limits["peak_gmacs"], not args.no_compile)
    path = data_path(args.quick)
    print(f"data path, per epoch: indexing {path['index_seconds']:.2f} s, augmenting "
          f"{path['augment_seconds'] or 0:.2f} s (batch {path['batch']})")
    name = "cpu_limits" + ("_quick" if args.quick else "") + (
        "_no-compile" if args.no_compile else "") + ".json"
    output = save_metrics(paths.results_dir() / "speedrun" / name,
                          {"peak": limits, "networks": steps, "data_path": path,
                           "cpu_name": devices.device_name(torch.device("cpu")),
                           "torch_version": torch.__version__,
                           "threads": torch.get_num_threads(),
                           "compile": not args.no_compile, "epoch_images": EPOCH},
                          seed=0, config=vars(args))
    for key, entry in steps.items():
        print(f"{key}: floor {entry['floor_seconds']:.2f} s for {entry['epochs']} epoch(s) at "
              f"the peak rate ({entry['macs_per_image']:,} multiply-adds per image)")
    print(f"written: {output}")


if __name__ == "__main__":
    main()
