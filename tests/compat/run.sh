#!/usr/bin/env bash
# Runs the real-client compat suites (kazoo, zkCli.sh, 4lw, differential, bad input, crash).
#   RZK_TEST_TARGET=apache|rzk   server under test (default apache)
#   RZK_BIN=path                 rzk binary (default target/debug/rzk)
# Needs: python3 + venv, Debian packages `zookeeper` (Apache ZooKeeper 3.8, zkCli.sh),
# a JRE (default-jre-headless) and `libslf4j-java` (slf4j-simple, for server logs).
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ] || ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.requirements.txt"
fi
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
