"""The set-up every `train` verb shares: the run folder, logging, the process group, settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorium.common.distributed import DistributedContext, init_distributed
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_run_dir


@contextmanager
def training_run(args) -> Iterator[DistributedContext]:
    """Join the process group (or run alone), check the run folder `args.out` and log to its
    train.log; leave the group on exit.

    `args` carries `out`, `force`, `resume` and `device`, as the train verbs parse them.
    """
    ctx = init_distributed(args.device)
    try:
        run_dir = Path(args.out)
        if ctx.is_main:
            check_run_dir(run_dir, force=args.force, resume=args.resume)
            if args.resume and not (run_dir / "checkpoint.pt").exists():
                raise SensoriumError(f"nothing to resume: {str(run_dir / 'checkpoint.pt')!r}")
        ctx.barrier()
        setup_logging(run_dir / "train.log" if ctx.is_main else None)
        if not ctx.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        yield ctx
    finally:
        ctx.close()


def write_settings(run_dir: Path, settings, ctx: DistributedContext) -> None:
    """The run's resolved settings (`settings.to_dict()`) as settings.json, from rank 0.

    Call it once the trainer has filled in what it reads off the data (channels, ids).
    """
    if ctx.is_main:
        text = json.dumps(settings.to_dict(), indent=2) + "\n"
        (Path(run_dir) / "settings.json").write_text(text)
