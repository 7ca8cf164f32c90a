"""Build n-MNIST style noisy versions of the MNIST source in use.

Usage:
    python scripts/make_noisy_mnist.py                      # all three noise types
    python scripts/make_noisy_mnist.py --noise awgn --source embedded --seed 1
    python scripts/make_noisy_mnist.py --source local --data-dir ~/mnist   # the full MNIST

Result: for ``clean`` and each noise type, ``data/noisy_mnist/<set>/``
``{train,val,test}_{images,labels}.npy`` (uint8 28x28 images, int64 labels; the
validation split is saved as its own pair) and ``data/noisy_mnist/manifest.json``;
a clean-vs-noisy figure per type ``results/noisy_mnist/samples_<noise>.png``;
and ``results/noisy_mnist/data_metrics.json`` with the source summary, the
noise settings and the measured SNR of every noisy split. Takes a few seconds
on the embedded 5,000 digits.

The sets and the manifest land together: they are built in a temporary folder
beside ``data/noisy_mnist`` that then replaces it whole (:func:`digitlab.repro.atomic_folder`),
so an interrupted run leaves the old sets under their old manifest, never sets
of two seeds side by side; sets of an earlier run that this one does not
build are gone with the old folder. Figures and ``data_metrics.json`` follow,
the metrics last. ``--output-dir`` must be a folder of its own (new, or one
this script wrote): one that holds other files is refused.
"""

from __future__ import annotations

import numpy as np

from digitlab import paths
from digitlab.cli import (
    add_data_options,
    add_verbose_option,
    cli,
    configure_logging,
    script_parser,
)
from digitlab.data import noise
from digitlab.data.sources import load_mnist
from digitlab.noisy.sets import (
    SPLITS,
    check_own_folder,
    corrupt_splits,
    noise_parameters,
    save_manifest,
    save_set,
    snr_report,
)
from digitlab.plots import image_grid
from digitlab.repro import atomic_folder, save_figure, save_metrics


def sample_figure(clean: np.ndarray, noisy: np.ndarray, labels: np.ndarray, kind: str):
    """One example of each digit: clean on the top row, corrupted below."""
    picks = [int(np.flatnonzero(labels == d)[0]) for d in range(10) if np.any(labels == d)]
    images = np.concatenate([clean[picks], noisy[picks]])
    titles = [f"clean {labels[i]}" for i in picks] + ["noisy" for _ in picks]
    return image_grid(images, titles, ncols=len(picks), cmap="gray", vmin=0, vmax=255,
                      suptitle=f"MNIST test digits: clean (top) and {kind} (bottom)")


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    add_data_options(parser)
    parser.add_argument("--noise", nargs="+", choices=[*noise.NOISE_TYPES, "all"],
                        default=["all"], help="noise types to build")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data split and of the noise")
    parser.add_argument("--output-dir", default=None,
                        help="where the .npy sets go (default: data/noisy_mnist)")
    parser.add_argument("--results-dir", default=None,
                        help="figures and metrics (default: results/noisy_mnist)")
    add_verbose_option(parser)
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    configure_logging(args.verbose)
    out_dir = args.output_dir or paths.noisy_mnist_dir()
    results = args.results_dir or paths.noisy_results()
    kinds = list(noise.NOISE_TYPES) if "all" in args.noise else list(dict.fromkeys(args.noise))

    check_own_folder(out_dir)  # before minutes of work, not after
    splits = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    summary = splits.summary()  # load_mnist logs the source and sizes
    snrs, noisy_tests = {}, {}
    with atomic_folder(out_dir) as staging:
        save_set(corrupt_splits(splits, "clean", args.seed), staging)
        for kind in kinds:
            noisy = corrupt_splits(splits, kind, args.seed)
            save_set(noisy, staging)
            snrs[kind] = {split: snr_report(getattr(splits, f"{split}_images"),
                                            noisy.split(split)[0], kind) for split in SPLITS}
            noisy_tests[kind] = noisy.test_images
        save_manifest(staging, summary, args.seed, ["clean", *kinds])
    for kind in kinds:
        fig = sample_figure(splits.test_images, noisy_tests[kind], splits.test_labels, kind)
        save_figure(fig, f"{results}/samples_{kind}.png")
        test_snr = snrs[kind]["test"]["snr_db"]
        print(f"{kind:>14}: saved to {out_dir}/{kind}; measured test SNR {test_snr:.2f} dB "
              "(after clipping, 0 dBW reference)")
    save_metrics(f"{results}/data_metrics.json", {"measured_snr": snrs},
                 seed=args.seed, config={**vars(args), "noise": kinds},
                 data=summary, noise=noise_parameters())
    print(f"metrics written to {results}/data_metrics.json")


if __name__ == "__main__":
    main()
