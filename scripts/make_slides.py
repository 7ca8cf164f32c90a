"""Draw the CNN project's slide deck from its computed numbers and figures.

Usage:
    python scripts/make_slides.py
    python scripts/make_slides.py --metrics results/mnist/project/metrics.json --output talk.pdf

Result: results/mnist/slides.pdf, ten 16:9 slides (the question, the data,
preprocessing, the network, training, the results table, the confusion matrix,
filters and feature maps, typical mistakes, conclusions) whose numbers are read
from the metrics file and whose pictures are the PNGs beside it, both written
by the notebook mnist_05_cnn_project (`make mnist`).
"""

from __future__ import annotations

from pathlib import Path

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.mnist.slides import write_slides


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--metrics", type=Path,
                        default=paths.mnist_project_results() / "metrics.json",
                        help="the CNN project's metrics; its figures are read from the same "
                             "folder")
    parser.add_argument("--output", type=Path, default=paths.mnist_slides(),
                        help="the PDF to write")
    args = parser.parse_args(argv)
    output = write_slides(args.metrics, args.output)
    print(f"slides written to {output}")


if __name__ == "__main__":
    main()
