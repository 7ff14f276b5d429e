"""Reading ``strace -c``'s table: the syscall counts in docs/performance.md come from it."""

from __future__ import annotations

from tests.bench.syscalls import parse_strace_c

TABLE = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 31.02    0.012345           3      4010           recvfrom
 20.00    0.008000           2      4000        10 accept4
  0.10    0.000040          40         1           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    0.020385                  8011        10 total
"""


def test_parse_strace_c_table() -> None:
    got = parse_strace_c(TABLE)
    assert got == {"recvfrom": (4010, 0), "accept4": (4000, 10), "epoll_pwait": (1, 0)}
