"""core.children: stopping a child's whole process group without making the caller wait (quitting the app)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from core.children import group_alive, stop_group_detached

# A group leader that ignores SIGTERM (as a busy server may for a while) and starts a grandchild in its group.
STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                      "time.sleep(600)"])
    print("ready", flush=True)
    time.sleep(600)
""")


def _start_stubborn() -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def _wait_group_gone(pgid: int, limit_s: float = 60.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


def test_a_quick_child_is_stopped_by_sigterm_alone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    stop_group_detached(child, grace_s=30.0, settle_s=30.0)
    assert child.poll() is not None
    assert not group_alive(child.pid)


def test_a_stubborn_group_is_killed_later_by_the_detached_stopper() -> None:
    child = _start_stubborn()
    try:
        stop_group_detached(child, grace_s=3.0, settle_s=0.0)
        # Returned before the grace period: the group ignored SIGTERM and is still there...
        assert group_alive(child.pid)
        child.wait(timeout=60)  # ...until the stopper's SIGKILL
        assert _wait_group_gone(child.pid)
    finally:
        if child.poll() is None:
            child.kill()


def test_the_stopper_finishes_the_job_after_the_caller_has_exited(tmp_path: Path) -> None:
    # A parent that starts a stubborn group, asks for a detached stop and exits at once: nobody is left to wait,
    # yet the group must not survive it.
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from core.children import stop_group_detached
        child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], stdout=subprocess.PIPE,
                                 start_new_session=True)
        assert child.stdout.readline() == b"ready\\n"
        print(child.pid, flush=True)
        stop_group_detached(child, grace_s=1.0, settle_s=0.0)
    """))
    parent = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert parent.returncode == 0, parent.stderr
    pgid = int(parent.stdout.split()[0])
    assert _wait_group_gone(pgid)
