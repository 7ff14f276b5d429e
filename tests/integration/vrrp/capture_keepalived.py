"""Re-capture the keepalived byte vectors under tests/unit/vrrp/data/ (needs root).

    python -m tests.integration.vrrp.capture_keepalived

For each ``keepalived-<name>.conf`` there, runs Debian's keepalived in a lab
namespace (bridge lbvbr231, subnet 198.19.231.0/24: the addresses the configs
name) and records with tcpdump, from the peer namespace, the adverts it sends
as master and the priority-0 advert it sends when stopped with SIGTERM, into
``keepalived-<version>-<name>.pcap``. The unit tests decode and re-encode them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.vrrp.lab import Lab, wait_for
from tests.unit.vrrp.pcap import DATA


def keepalived_version() -> str:
    out = subprocess.run(["/usr/sbin/keepalived", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split()[1].lstrip("v")  # "Keepalived v2.2.7 (...)"


def main() -> int:
    version = keepalived_version()
    tmp = Path(tempfile.mkdtemp(prefix="lbv-capture-"))
    lab = Lab(tmp, n_hosts=2, net=231)
    try:
        a, b = lab.hosts
        for conf in sorted(DATA.glob("keepalived-*.conf")):
            name = conf.stem.removeprefix("keepalived-")
            pcap = DATA / f"keepalived-{version}-{name}.pcap"
            dump = subprocess.Popen(
                b.exec_cmd(
                    ["tcpdump", "-U", "-i", "eth0", "-w", str(tmp / pcap.name), "ip proto 112"]
                ),
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            log = tmp / f"{name}.log"
            proc = lab.start_keepalived(a, conf, log)
            wait_for(lambda log=log: "Entering MASTER STATE" in log.read_text(), 10)
            time.sleep(2.2)  # a few adverts as master
            lab.kill(proc, signal.SIGTERM)
            time.sleep(0.5)
            dump.send_signal(signal.SIGINT)
            dump.wait(5)
            pcap.write_bytes((tmp / pcap.name).read_bytes())
            print(f"wrote {pcap}")
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
