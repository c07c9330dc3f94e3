"""A disk that fills during training (issue 24, item 7): the run ends with one sentence, no traceback, no half file,
the checkpoints written before intact; --resume goes on from last.pt, or from best.pt when only it was written.

The disk is filled for real at the level torch.save writes to: the temporary checkpoint file's writes raise
OSError(ENOSPC) once a chosen checkpoint write has put a few kilobytes in it, as a disk that fills mid-file does.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, run_cli
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.runs.rundir import RunDir
from siamese_core.training.loop import train

# Installed in this process or a command-line child: a checkpoint's temporary file (.<name>.pt.<random>.tmp) gets a
# file object whose writes fail with ENOSPC after 4 KB, on the `fail_on`-th write of checkpoints/<name>.pt.
FILL_THE_DISK = '''
import errno, os
from siamese_core import files

def fill_the_disk(name, fail_on):
    real_fdopen, seen = os.fdopen, {"writes": 0}

    class FillingFile:
        def __init__(self, fh):
            self.fh, self.written = fh, 0
        def write(self, data):
            if self.written + len(data) > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.fh.write(data)
        def __getattr__(self, attr):
            return getattr(self.fh, attr)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

    def fdopen(fd, *args, **kwargs):
        fh = real_fdopen(fd, *args, **kwargs)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}.pt."):
            seen["writes"] += 1
            if seen["writes"] == fail_on:
                return FillingFile(fh)
        return fh

    files.os.fdopen = fdopen  # the os module atomic_write writes through
    return real_fdopen
'''


def leftovers(run: RunDir) -> list:
    return sorted(p.name for p in run.path.rglob("*") if p.name.endswith(".tmp"))


def epochs_logged(run: RunDir) -> list:
    return [r["epoch"] for r in run.read_metrics() if r.get("type") == "epoch"]


@pytest.mark.slow
def test_a_disk_filling_at_the_second_last_checkpoint_ends_the_run_with_a_sentence_and_keeps_epoch_one(tmp_path):
    namespace: dict = {}
    exec(FILL_THE_DISK, namespace)
    config = TrainConfig(dataset="digits", backbone="convnet", epochs=2, pairs_per_epoch=512)
    real_fdopen = namespace["fill_the_disk"]("last", fail_on=2)  # epoch 1's last.pt is written, epoch 2's is not
    try:
        with pytest.raises(UserError) as failed:
            train(config, tmp_path / "run")
    finally:
        namespace["files"].os.fdopen = real_fdopen
    sentence = str(failed.value)
    assert "checkpoints/last.pt could not be written because the disk is full" in sentence
    assert "--resume" in sentence and str(tmp_path) not in sentence  # no server path: the app shows it too
    run = RunDir(tmp_path / "run")
    status = run.status()
    assert status.state == "failed" and status.error == sentence
    assert leftovers(run) == []
    last = torch.load(run.checkpoint("last"), weights_only=True)  # the earlier checkpoint, whole
    assert last["epoch"] == 1 and "optimizer" in last
    assert "Traceback" not in run.log_path.read_text()  # a full disk is no bug: the sentence says it all

    status = train(config, tmp_path / "run", resume=True)
    assert status.state == "done" and status.epoch == 2
    assert epochs_logged(run) == [1, 2]


@pytest.mark.slow
def test_the_command_line_says_one_sentence_and_resumes_from_best_alone(tmp_path):
    """The first last.pt write fails (epoch 1): only best.pt is on disk, and --resume continues from it."""
    out = tmp_path / "run"
    args = ["train", "--dataset", "digits", "-b", "convnet", "-o", str(out), "--pairs-per-epoch", "512", "-e", "2"]
    script = (FILL_THE_DISK + "\nimport sys\nfill_the_disk('last', fail_on=1)\n"
              "from siamese_core.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    failed = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr and "inline_container" not in failed.stderr, failed.stderr
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: Training stopped: checkpoints/last.pt could not be written because the disk "
                                "is full"), last_line
    run = RunDir(out)
    assert run.status().state == "failed" and leftovers(run) == []
    assert run.checkpoint("best").is_file() and not run.checkpoint("last").exists()

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoints/best.pt, the weights of epoch 1" in resumed.stderr
    assert run.status().state == "done" and epochs_logged(run) == [1, 2]
    assert torch.load(run.checkpoint("last"), weights_only=True)["epoch"] == 2
    assert run.status().error is None
