"""Apache Curator 5 (Debian's libcurator-*-java) against the server: CRUD
with container parents, transactions, and the recipes applications use
(InterProcessMutex, LeaderLatch, DistributedAtomicLong, CuratorCache on a
persistent recursive watch). The Java program is tests/compat/curator/."""

import os
import shutil
import subprocess
import tempfile

import pytest

RECIPES = "/usr/share/java/curator-recipes.jar"
SOURCE = os.path.join(os.path.dirname(__file__), "curator", "CuratorConformance.java")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(RECIPES) and shutil.which("javac")) and os.environ.get("RZK_REQUIRE_ZOOKEEPER") != "1",
    reason="Curator (libcurator-recipes-java) or javac is not installed",
)


@pytest.fixture(scope="module")
def classes():
    out = tempfile.mkdtemp(prefix="curator-")
    subprocess.run(["javac", "-cp", RECIPES, "-d", out, SOURCE], check=True, timeout=180)
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_curator_recipes(server, classes):
    p = subprocess.run(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", f"{RECIPES}:{classes}", "CuratorConformance", server.hosts],
        capture_output=True, text=True, timeout=240,
    )
    out = p.stdout
    assert p.returncode == 0 and "ALL OK" in out, out + p.stderr[-3000:]
