"""The set-up every `train` verb shares: the run folder, logging, the process group, settings."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorium.common.distributed import DistributedContext, init_distributed
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_run_dir

# what a train verb writes into its run folder
RUN_OUTPUTS = (
    "checkpoint.pt", "model.pt", "encoder.pt", "settings.json", "summary.json", "metrics.csv",
    "train.log",
)  # fmt: skip


@contextmanager
def training_run(args, clear: tuple[str, ...] = ()) -> Iterator[DistributedContext]:
    """Join the process group (or run alone), check the run folder `args.out` and log to its
    train.log; leave the group on exit.

    If the run fails on bad input before its first checkpoint, a run folder that it created
    itself is removed again, so a typo leaves nothing behind.

    A forced run that does not resume first deletes the files named in `clear` (the
    outputs of an earlier run, e.g. `RUN_OUTPUTS`), so none of them outlives it unchanged.

    `args` carries `out`, `force`, `resume` and `device`, as the train verbs parse them.
    """
    ctx = init_distributed(args.device)
    run_dir = Path(args.out)
    created = not run_dir.exists()
    try:
        if ctx.is_main:
            check_run_dir(run_dir, force=args.force, resume=args.resume)
            if args.resume and not (run_dir / "checkpoint.pt").exists():
                raise SensoriumError(
                    f"nothing to resume: {str(run_dir / 'checkpoint.pt')!r} does not exist"
                )
            if args.force and not args.resume:
                for name in clear:
                    (run_dir / name).unlink(missing_ok=True)
        ctx.barrier()
        setup_logging(run_dir / "train.log" if ctx.is_main else None)
        if not ctx.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        yield ctx
    except SensoriumError:
        if ctx.is_main and created and not (run_dir / "checkpoint.pt").exists():
            _discard(run_dir)
        raise
    finally:
        ctx.close()


def _discard(run_dir: Path) -> None:
    """Close the log files inside `run_dir`, then remove the folder."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).is_relative_to(
            run_dir.resolve()
        ):
            root.removeHandler(handler)
            handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)


def write_settings(run_dir: Path, settings, ctx: DistributedContext) -> None:
    """The run's resolved settings (`settings.to_dict()`) as settings.json, from rank 0.

    Call it once the trainer has filled in what it reads off the data (channels, ids).
    """
    if ctx.is_main:
        text = json.dumps(settings.to_dict(), indent=2) + "\n"
        (Path(run_dir) / "settings.json").write_text(text)


def saved_settings(run_dir: Path) -> dict:
    """The settings.json a run folder was started with, for --resume."""
    path = Path(run_dir) / "settings.json"
    if not path.is_file():
        raise SensoriumError(f"nothing to resume: {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SensoriumError(f"cannot resume: {str(path)!r} is unreadable ({exc})") from exc
