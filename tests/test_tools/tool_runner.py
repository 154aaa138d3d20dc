"""Running the repository's tools (and the libraries' own) as a user does:
a fresh Python process from the repository root."""
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(args, cwd=ROOT):
    """Run ``python *args`` and return its output; fail with its tail.

    Args:
        args (list[str]): Script and arguments.
        cwd (str): Working directory. Defaults to the repository root.

    Returns:
        str: stdout and stderr together.
    """
    result = subprocess.run(
        [sys.executable] + args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    return result.stdout + result.stderr
