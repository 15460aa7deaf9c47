"""Debian's syslog-ng as a real shipper for the tests: a file of lines into the bulk API.

Its `elasticsearch-http()` destination (packages syslog-ng-core, syslog-ng-mod-http and
syslog-ng-scl, installed by `make tools`) reads the file and posts NDJSON to `<url>/_bulk` with
Basic auth: the API key's id and secret. The suite (tests/shippers) and `make e2e` (e2e/) both
run it.
"""

import shutil
import subprocess
from pathlib import Path

from tests.support.processes import process_group_stop

# The documents syslog-ng sends: ECS names, so that each field lands where it belongs.
TEMPLATE = (
    "$(format-json message=$MESSAGE @timestamp=$ISODATE service.name={service} log.level=notice)"
)
CONF = """@version: 3.38
@include "scl.conf"
options {{ stats_freq(0); }};
source s_lines {{ file("{lines}" flags(no-parse) follow-freq(0.2)); }};
destination d_bulk {{
    elasticsearch-http(
        url("{url}/_bulk")
        index("syslog-ng")
        type("")
        user("{user}")
        password("{password}")
        batch-lines(50)
        batch-timeout(200)
        workers(2)
        template("{template}")
    );
}};
log {{ source(s_lines); destination(d_bulk); }};
"""


class SyslogNg:
    """syslog-ng in the foreground with a config of its own, its files under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def log(self) -> str:
        """What syslog-ng said (its errors, if it stopped)."""
        path = self.folder / "syslog-ng.log"
        return path.read_text() if path.exists() else ""

    def ship(self, *, lines: list[str], url: str, key: dict, service: str) -> subprocess.Popen:
        """Write `lines` to a file and start shipping it to `url`/_bulk with `key`."""
        source = self.folder / "app.log"
        source.write_text("".join(f"{line}\n" for line in lines))
        key_id, secret = key["key_id"], key["key"].split("_", 2)[2]
        conf = CONF.format(
            lines=source,
            url=url,
            user=key_id,
            password=secret,
            template=TEMPLATE.format(service=service),
        )
        (self.folder / "syslog-ng.conf").write_text(conf)
        binary = shutil.which("syslog-ng") or "/usr/sbin/syslog-ng"
        options = {"-f": "syslog-ng.conf", "-R": "persist", "-p": "pid", "-c": "ctl"}
        files = [str(part) for flag, name in options.items() for part in (flag, self.folder / name)]
        self.proc = subprocess.Popen(
            [binary, "-F", "--no-caps", *files],
            stdout=(self.folder / "syslog-ng.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so that stopping it reaches every thread
        )
        return self.proc

    def stop(self) -> None:
        """Stop it, if it was started."""
        if self.proc is not None:
            process_group_stop(self.proc, grace=10)
