"""Continuous writer and checker for the rzk operator e2e suite (runs in a pod, uses kazoo).

  python writer.py write HOSTS STOPFILE   # create /e2e/w-<n> = n until STOPFILE exists;
                                          # prints "ACK n" after each acknowledged write and
                                          # "GAP seconds" for every stall longer than 2s
  python writer.py check HOSTS ACKFILE    # every acknowledged n must exist with data n
"""
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError


def connect(hosts):
    while True:
        try:
            zk = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": -1, "delay": 0.5})
            zk.start(timeout=30)
            return zk
        except Exception as e:  # noqa: BLE001 - any failure: retry with a new client
            print(f"CONNECT-FAILED {e}", flush=True)
            time.sleep(1)


def write(hosts, stopfile):
    zk = connect(hosts)
    zk.ensure_path("/e2e")
    n = 0
    last_ok = time.monotonic()
    while not os.path.exists(stopfile):
        path = f"/e2e/w-{n:08d}"
        try:
            try:
                zk.create(path, str(n).encode())
            except NodeExistsError:
                pass  # an earlier attempt was applied but its reply was lost
            now = time.monotonic()
            if now - last_ok > 2:
                print(f"GAP {now - last_ok:.1f}", flush=True)
            last_ok = now
            print(f"ACK {n}", flush=True)
            n += 1
        except Exception as e:  # noqa: BLE001
            print(f"ERR {n} {type(e).__name__}", flush=True)
            time.sleep(0.2)
            if not zk.connected:
                zk.stop()
                zk = connect(hosts)
        time.sleep(0.05)
    zk.stop()
    print(f"DONE {n}", flush=True)


def check(hosts, ackfile):
    acked = [int(line.split()[1]) for line in open(ackfile) if line.startswith("ACK ")]
    zk = connect(hosts)
    zk.sync("/e2e")
    missing = []
    for n in acked:
        data, _ = zk.get(f"/e2e/w-{n:08d}") if zk.exists(f"/e2e/w-{n:08d}") else (None, None)
        if data != str(n).encode():
            missing.append(n)
    zk.stop()
    print(f"acknowledged={len(acked)} missing={len(missing)} first_missing={missing[:10]}")
    return 1 if missing or not acked else 0


if __name__ == "__main__":
    mode, hosts, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "write":
        write(hosts, arg)
    elif mode == "check":
        sys.exit(check(hosts, arg))
    else:
        sys.exit(f"unknown mode {mode}")
