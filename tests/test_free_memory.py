"""`release_free_memory` hands freed heap pages back to the system (glibc's `malloc_trim`)."""

import subprocess
import sys
from pathlib import Path

import pytest

from dcnrank.free_memory import _malloc_trim, release_free_memory

# In a fresh interpreter: 100 KB blocks come from the heap (under glibc's mmap threshold);
# the last one kept pins the heap's top, so freeing the others leaves them resident until trimmed.
SCRIPT = """
import re
import pyarrow  # imported before measuring: its own pages are resident, not freed memory
from pathlib import Path
from dcnrank.free_memory import release_free_memory
def resident():
    return int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
start = resident()
blocks = [bytearray(100_000) for _ in range(600)]  # zero-filled: every page touched
grown = resident() - start
keep = blocks[-1]
del blocks
freed = resident()
release_free_memory(arrow=True)
print(grown, freed - start, freed - resident())
"""


@pytest.mark.skipif(_malloc_trim() is None or not Path("/proc/self/status").exists(), reason="needs glibc on Linux")
def test_freed_heap_memory_goes_back_to_the_system():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    grown, still_resident, released = map(float, done.stdout.split())
    assert grown > 40 and still_resident > 40, "the freed blocks were not resident to begin with"
    assert released > grown * 0.8, f"only {released:.0f} of {grown:.0f} MB went back to the system"


def test_it_runs_anywhere():
    release_free_memory()
    release_free_memory(arrow=True)
