"""The README's tour, run as written: every ```sh block, in order, in one bash, against the stack.

So the README cannot drift from the API: a renamed parameter or a changed answer fails here.
(```bash blocks are examples with placeholders, such as the alerts' channel id, and are not run.)
"""

import re
import subprocess
from pathlib import Path

from browser_config import BASE_URL

from tracker.exports import CSV_COLUMNS

README = Path(__file__).resolve().parent.parent / "README.md"
TOUR_SECONDS = 60


def _tour() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 5, "the README's tour has lost its blocks"
    return "\n".join(blocks)


def test_every_sh_block_of_the_readme_runs_against_the_stack() -> None:
    script = _tour()
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        env={"BASE": BASE_URL, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=TOUR_SECONDS,
        check=False,
    )
    out = done.stdout

    assert done.returncode == 0, (done.returncode, done.stderr[-2000:], out[-2000:])
    assert '"status":"queued"' in out.replace(" ", "")  # the batch's items
    assert "checkout failed: card declined" in out  # found by the query
    assert ",".join(CSV_COLUMNS) in out  # the export's CSV header
    assert "event: live" in out  # the tail answered, and was cut by --max-time
    assert re.search(r"^plk_", out, flags=re.MULTILINE) is None  # the key is kept, not printed
