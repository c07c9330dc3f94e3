"""`runs`: list the runs in a folder with their state and figures."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..runs.rundir import epoch_in_progress
from ..words import ordinal


def add_runs_parser(commands) -> None:
    r = commands.add_parser("runs", help="list the runs in a folder with their state and figures",
                            description="List runs, newest first. A run whose training process has ended "
                                        "without saying so (a kill, a crash) is marked failed or stopped here, and "
                                        "runs waiting for a free slot start if one is free, as when the app lists them.")
    r.add_argument("-d", "--dir", help="the folder of runs (default: SIAMESE_RUNS_DIR, else ./runs)")
    r.add_argument("--json", action="store_true", help="print the runs as JSON")
    r.set_defaults(handler=run_runs)


def run_runs(args) -> int:
    from ..runs import jobs

    root = Path(args.dir) if args.dir else None
    if root is not None and not root.is_dir():
        raise UserError(f"'{root}' is not a folder of runs.")
    infos = jobs.list_runs(root)  # marks a run whose process is gone as failed or stopped
    if jobs.advance_queue(root, infos):  # a slot is free and a run waits: no trainer was left to start it
        infos = jobs.list_runs(root)
    places = jobs.queue_places(infos)
    listed = [{"run": i.name, "state": i.state, "epoch": epoch_in_progress(i.status),
               "epochs": i.status.total_epochs, "best_accuracy": i.status.best_accuracy,
               "best_epoch": i.status.best_epoch, "error": i.status.error,
               "in_line": places[i.name]["place"] if i.name in places else None}  # waiting runs: 1 starts next
              for i in infos]
    if args.json:
        print(json.dumps(listed))
        return 0
    if not listed:
        print(f"No runs in {root or 'the runs folder'}.")
    for row in listed:
        best = (f"best {100 * row['best_accuracy']:.1f}%" + (f" (epoch {row['best_epoch']})" if row["best_epoch"] else "")
                if row["best_accuracy"] is not None else "no epoch finished")
        state = f"waiting ({ordinal(row['in_line'])} in line)" if row["in_line"] else row["state"]
        print(f"{row['run']}  {state}  epoch {row['epoch'] or 0} of {row['epochs'] or '?'}  {best}"
              + (f"  ({row['error']})" if row["error"] else ""))
    return 0
