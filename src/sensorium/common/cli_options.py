"""Command-line pieces every system's verbs share, so the verbs read and behave alike."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


class VerbParser(argparse.ArgumentParser):
    """A verb's parser: its --help shows every option's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        # the defaults formatter shows a default only beside some help text
        if args and str(args[0]).startswith("-"):
            kwargs.setdefault("help", "default: %(default)s")
        return super().add_argument(*args, **kwargs)


def add_system(
    systems: argparse._SubParsersAction,
    name: str,
    help: str,
    verbs: Sequence[Callable[[argparse._SubParsersAction], None]],
) -> None:
    """`sensorium NAME VERB ...`: each function in `verbs` adds one verb."""
    parser = systems.add_parser(name, help=help)
    subparsers = parser.add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=VerbParser
    )
    for add_verb in verbs:
        add_verb(subparsers)


def add_run_options(
    p: argparse.ArgumentParser, steps: int, batch_size: int, lr: float, eval_every: int
) -> None:
    """The options of every `train` verb, with the system's defaults."""
    p.add_argument("--out", required=True, help="run folder for checkpoints, log and metrics")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch-size", type=int, default=batch_size, help="per step and process")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--eval-every", type=int, default=eval_every)
    add_run_folder_options(
        p,
        "continue the run in --out with the model and data settings it was started with "
        "(its settings.json); --steps and the other schedule options come from this command",
    )


def add_run_folder_options(p: argparse.ArgumentParser, resume_help: str) -> None:
    """--seed, --device, --resume and --force, as every `train` verb has them."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--resume", action="store_true", help=resume_help)
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")


def add_sampling_options(
    p: argparse.ArgumentParser, samplers: Sequence[str] | None = None, help: str = ""
) -> None:
    """The options of every verb that samples from a model; --sampler unless `samplers` is
    None (a demo that runs both samplers)."""
    p.add_argument("--seed", type=int, default=0)
    if samplers is not None:
        p.add_argument("--sampler", default="cached", choices=samplers, help=help)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
