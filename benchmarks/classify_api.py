"""Accuracy of the classifier through the web API, against its accuracy on the originals.

Usage:
    python benchmarks/classify_api.py             # the 1,000 embedded test digits
    python benchmarks/classify_api.py --quick     # 100 digits, writes classify_api_quick.json
    python benchmarks/classify_api.py --source local --data-dir ~/mnist   # its 10,000 test digits
    python benchmarks/classify_api.py --checkpoint models/mnist_cnn_awgn.pt --output /tmp/a.json

Each embedded test digit is enlarged from 28x28 to 280x280 (bilinear, smooth
like a stroke drawn on the page's canvas), encoded as a PNG and sent to
``POST /classify`` through Flask's test client, once as white ink on black and
once inverted (black ink on white, like a photo of paper). The app must find
the digit, shrink it back to MNIST's 20-pixel box and centre it, so its
accuracy should be (nearly) that of the checkpoint on the 28x28 originals.
Prints both accuracies and how far apart they are, in points and in digits,
and writes ``results/web/classify_api.json`` (``metrics.direct_accuracy``,
``metrics.api_accuracy``, ``metrics.api_accuracy_inverted``, ``metrics.n``, the
gaps, ``metrics.meets_target``). Target: the API within 1 point of the
originals in both polarities. Needs ``models/mnist_cnn.pt`` (``make mnist``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from digitlab import paths
from digitlab.cli import add_data_options, cli, script_parser
from digitlab.data.sources import load_mnist
from digitlab.errors import UserError
from digitlab.pipeline.benchmarks import add_output_option, full_mnist_naming, output_path
from digitlab.repro import save_metrics
from digitlab.web import create_app
from digitlab.web.classifier import TRAIN_COMMAND, load_classifier
from digitlab.web.images import drawing_data_uri

TOLERANCE_POINTS = 1.0
QUICK_DIGITS = 100


def accuracy_gap(labels: np.ndarray, direct: np.ndarray, api: np.ndarray) -> dict:
    """Accuracy of the direct and the API predictions, and how far apart they are.

    ``gap_points``: API minus direct accuracy, in percentage points (negative: the
    API reads worse); ``gap_digits``: the same as a count of digits;
    ``disagreements``: digits the two read differently, right or wrong.
    """
    labels, direct, api = (np.asarray(a) for a in (labels, direct, api))
    direct_correct, api_correct = int((direct == labels).sum()), int((api == labels).sum())
    n = len(labels)
    return {
        "direct_accuracy": direct_correct / n,
        "api_accuracy": api_correct / n,
        "gap_points": 100 * (api_correct - direct_correct) / n,
        "gap_digits": api_correct - direct_correct,
        "disagreements": int((direct != api).sum()),
    }


def within_tolerance(gap_points: float, tolerance: float = TOLERANCE_POINTS) -> bool:
    """The API reads as well as the originals, give or take ``tolerance`` points."""
    return abs(gap_points) <= tolerance


def read_through_api(client, images: np.ndarray, invert: bool, size: int) -> np.ndarray:
    digits = []
    label = "inverted" if invert else "white on black"
    for image in tqdm(images, desc=f"/classify, {label}", unit="digit", leave=False):
        reply = client.post("/classify", json={"image": drawing_data_uri(image, size, invert)})
        body = reply.get_json()
        if reply.status_code != 200 or not body.get("success"):
            raise RuntimeError(f"/classify answered HTTP {reply.status_code}: {body}")
        digits.append(body["digit"])
    return np.array(digits)


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="classifier checkpoint (default: models/mnist_cnn.pt)")
    parser.add_argument("--size", type=int, default=280, help="side of the PNGs sent, pixels")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split (the one the checkpoint was trained with, so "
                             "its test digits stay unseen)")
    add_data_options(parser, default_source="embedded")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_DIGITS} test digits only, for the test suite")
    add_output_option(parser, "web/classify_api.json")
    args = parser.parse_args(argv)
    if not 28 <= args.size <= 1024:
        raise UserError(f"--size must be from 28 to 1024, got {args.size}.")
    checkpoint = args.checkpoint or paths.cnn_checkpoint()
    if not checkpoint.is_file():
        raise UserError(f"no classifier checkpoint at {checkpoint}; train it with "
                        f"{TRAIN_COMMAND} or pass --checkpoint PATH.")
    torch.set_num_threads(1)  # one small forward pass per request, as scripts/serve.py runs them
    classifier = load_classifier(checkpoint)
    splits = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    n = QUICK_DIGITS if args.quick else len(splits.test_labels)
    images, labels = splits.test_images[:n], splits.test_labels[:n]

    direct = classifier.probabilities(images).argmax(1)
    client = create_app(checkpoint=checkpoint).test_client()
    upright = accuracy_gap(labels, direct, read_through_api(client, images, False, args.size))
    inverted = accuracy_gap(labels, direct, read_through_api(client, images, True, args.size))
    metrics = {
        "n": n,
        "direct_accuracy": upright["direct_accuracy"],
        "api_accuracy": upright["api_accuracy"],
        "api_accuracy_inverted": inverted["api_accuracy"],
        "gap_points": upright["gap_points"],
        "gap_digits": upright["gap_digits"],
        "gap_points_inverted": inverted["gap_points"],
        "gap_digits_inverted": inverted["gap_digits"],
        "disagreements": upright["disagreements"],
        "disagreements_inverted": inverted["disagreements"],
        "tolerance_points": TOLERANCE_POINTS,
        "meets_target": within_tolerance(upright["gap_points"])
        and within_tolerance(inverted["gap_points"]),
        "checkpoint": classifier.describe(),
    }
    # Only the default run writes the file the README quotes; any other writes beside it.
    defaults = {"checkpoint": None, "size": 280, "seed": 0, "source": "embedded", "data_dir": None,
                "quick": False}
    output = output_path(paths.web_results() / "classify_api.json",
                         full_mnist_naming(vars(args), defaults, splits.summary()), defaults,
                         args.output)
    save_metrics(output, metrics, seed=args.seed, config=vars(args), data=splits.summary())
    print(f"{n} test digits ({splits.description}), {args.size}x{args.size} PNGs through "
          "POST /classify:")
    print(f"  28x28 originals:     {metrics['direct_accuracy']:.2%}")
    for polarity, result in (("white on black", upright), ("black on white", inverted)):
        print(f"  API, {polarity}: {result['api_accuracy']:.2%}  ({result['gap_points']:+.1f} "
              f"points, {result['gap_digits']:+d} digits; read differently: "
              f"{result['disagreements']})")
    if classifier.describe()["data_source"] != splits.source:
        print(f"  note: the checkpoint was not trained on the {splits.source} split; these test "
              "digits may be among the ones it was trained on.")
    print(f"target (within {TOLERANCE_POINTS:g} point both ways): "
          f"{'met' if metrics['meets_target'] else 'NOT met'}; results written to {output}")


if __name__ == "__main__":
    main()
