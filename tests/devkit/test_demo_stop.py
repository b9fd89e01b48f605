"""`make demo-stop` (python -m nbstack_devkit.demo stop) prints what the stopping demo pushed.

The demo runs in another process; `stop` sends it SIGTERM and waits. A
stand-in for the demo's process answers SIGTERM the way Rehearsal.stop ends
(the browser test checks that the real one writes the file), so this test
needs no servers.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nbstack_devkit import demo

STAND_IN = """
import pathlib, signal, sys, time
def stop(*_):
    pathlib.Path(sys.argv[1]).write_text(sys.argv[2] + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_stop_prints_the_autosave_branch_the_demo_pushed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = tmp_path / "nbstack-demo"
    line = "autosave: autosave/demo/20260105T090000Z on the git server (git --git-dir x show --stat y)"
    running = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(demo.stop_report_file(state_dir)), line],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert running.stdout is not None and running.stdout.readline() == "ready\n"
        state_dir.with_name(state_dir.name + ".pid").write_text(f"{running.pid}\n")
        threading.Thread(target=running.wait, daemon=True).start()  # reaped at once, as the shell reaps make's demo
        assert demo.stop_command(state_dir, timeout=30) == 0
    finally:
        running.kill()
    printed = capsys.readouterr().out
    assert line in printed
    assert printed.rstrip().endswith("Stopped.")
