"""User space's view of a process's fds lags the kernel's; two races of that lag, each
checked against every interleaving.

A /proc scan of a process that is changing its fds meanwhile (busybox sh's `echo x >> log`
moves stdout onto the log and back within microseconds): the kernel's fd_state must not keep
what the scan read once the process has moved on, or stdout lines are shipped as lines of the
log file (seen on CI: a quiet container's 150 stdout lines stored as file lines beside its 150
file lines). (The user-space fd table may lag the same way; it only names fds the kernel
sends, so a stale name is never given to a pipe's writes.)

The kernel's rules are modelled here (probe.c fd_mark/fd_lookup, loader.py adopt_fd) and
checked against every interleaving of a scan with the shell's system calls; the integration
test (test_ebpf_files.py, test_stdout_moved_onto_a_log_file_and_back_stays_stdout) runs the
real probe.

A close_range or exec read late must not clear the fd of a newer open at the same number
(the bottom half; the integration test is test_a_subprocess_childs_own_log_at_its_parents_fd)."""

from __future__ import annotations

import itertools

import pytest

from shipper.sources.ebpf import events as E
from tests.unit.test_ebpf_source import SEND, ev, feed, src  # noqa: F401 (src: the fixture)

LOG, PIPE = "/var/log/q.log", "pipe:[7]"


class Kernel:
    """probe.c's fd_state rules for one process; `deleting` is the old rule (an fd that
    became no candidate lost its entry, and user space set what it read unconditionally)."""

    def __init__(self, deleting: bool = False) -> None:
        self.state: dict[int, int] = {}
        self.deleting = deleting
        self.gen = 0

    def mark(self, fd: int, st: int) -> None:
        if st:
            self.state[fd] = st
        elif self.deleting:
            self.state.pop(fd, None)
        elif fd in self.state:
            self.state[fd] = E.FD_GONE

    def open(self, fd: int) -> None:
        self.gen += 1
        self.mark(fd, (self.gen << 8) | E.FD_SEND)

    def dup(self, old: int, new: int) -> None:
        self.mark(new, self.state.get(old, 0))

    def close(self, fd: int) -> None:
        self.mark(fd, 0)

    def adopt(self, fd: int, value: int) -> None:
        if self.deleting or fd not in self.state:
            self.state[fd] = value

    def sends(self, fd: int) -> bool:
        return self.state.get(fd, 0) & 0xFF == E.FD_SEND


def echo_to_log(k: Kernel, fds: dict[int, str]) -> list[tuple[str, object]]:
    """busybox sh's `echo x >> log`, one system call per step, with what each does to the
    process's fds (`fds`, the truth /proc shows) and to the kernel's state."""
    def step(name: str, kernel_op: object, change: dict[int, str | None]) -> tuple[str, object]:
        def run() -> None:
            kernel_op()  # type: ignore[operator]
            for fd, target in change.items():
                if target is None:
                    fds.pop(fd, None)
                else:
                    fds[fd] = target
        return name, run
    return [
        step("open", lambda: k.open(3), {3: LOG}),
        step("fcntl(1, F_DUPFD, 10)", lambda: k.dup(1, 10), {10: PIPE}),
        step("dup2(3, 1)", lambda: k.dup(3, 1), {1: LOG}),
        step("close(3)", lambda: k.close(3), {3: None}),
        step("write(1)", lambda: None, {}),
        step("dup2(10, 1)", lambda: k.dup(10, 1), {1: PIPE}),
        step("close(10)", lambda: k.close(10), {10: None}),
    ]


def stale_interleavings(deleting: bool) -> list[tuple[int, int]]:
    """(step the scan read fd 1 before, step its adopt came before) pairs after which the
    shell's stdout is still captured one iteration later."""
    bad = []
    n = len(echo_to_log(Kernel(), {}))
    for read_at, set_at in itertools.product(range(2 * n + 1), repeat=2):
        if set_at < read_at:
            continue
        k, fds = Kernel(deleting), {1: PIPE}
        seen = None
        steps = echo_to_log(k, fds)
        steps += echo_to_log(k, fds)
        for i in range(2 * n + 1):
            if i == read_at:
                seen = fds.get(1)
            if i == set_at and seen == LOG:
                k.adopt(1, E.FD_SEND)
            if i < len(steps):
                steps[i][1]()  # type: ignore[operator]
        for _, run in echo_to_log(k, fds):  # one more `echo >> log`, then stdout is written
            run()  # type: ignore[operator]
        if fds[1] == PIPE and k.sends(1):
            bad.append((read_at, set_at))
    return bad


def test_the_old_rules_leave_stdout_captured_after_a_scan_in_the_middle_of_a_redirect() -> None:
    assert stale_interleavings(deleting=True)  # the model finds what CI found


def test_no_interleaving_of_a_scan_leaves_stdout_captured() -> None:
    assert stale_interleavings(deleting=False) == []


def test_a_forks_copy_does_not_overwrite_what_the_kernel_saw_the_child_do(src):  # noqa: F811
    feed(src, ev(E.OPEN, 3, fdval=SEND, arg1=E.AT_FDCWD, data=b"/var/log/a.log"))
    src.probe.fds[(200, 3)] = E.FD_GONE  # the child closed it before its fork event was read
    feed(src, ev(E.FORK, arg1=200))
    assert src.probe.fds[(200, 3)] == E.FD_GONE


# ---- a close user space reads late ------------------------------------------------------
# A Python parent with a log open spawns a child (subprocess): the child closes every fd
# above 2 (close_range), execs, and opens its own log, which gets fd 3 again. User space
# reads those events some time later; the kernel has marked the child's new log SEND by
# then. Clearing fd 3 for the close_range must not clear that newer open. The same holds
# when the parent's log is close-on-exec (Python opens files so) and the exec closes it.

PARENT, CHILD, A_LOG, B_LOG = 100, 200, b"/var/log/a.log", b"/var/log/b.log"
G1, G2 = (1 << 8) | E.FD_SEND, (2 << 8) | E.FD_SEND


def spawn(fds: dict[tuple[int, int], int], reopen: bool, cloexec: bool) -> list[tuple[object, E.Event | None]]:
    """The child's system calls: what each does in the kernel, and the event it sends."""
    def mark(key: tuple[int, int], value: int) -> object:
        return lambda: fds.__setitem__(key, value)
    steps: list[tuple[object, E.Event | None]] = [(None, ev(E.FORK, tgid=PARENT, arg1=CHILD))]
    if not cloexec:  # close_range(3, ~0): no kernel change
        steps.append((None, ev(E.CLOSE, 3, tgid=CHILD, arg1=2**32 - 1)))
    steps.append((None, ev(E.EXEC, tgid=CHILD)))
    if reopen:
        steps.append((mark((CHILD, 3), G2), ev(E.OPEN, 3, tgid=CHILD, fdval=G2, arg1=E.AT_FDCWD, data=B_LOG)))
    else:  # pipe() at fd 3: no event, no kernel change
        steps.append((None, None))
    return steps


def lookup(fds: dict[tuple[int, int], int], tgid: int, fd: int) -> int:
    """probe.c fd_lookup: the process's own entry, else its parent's (a fork's child)."""
    return fds.get((tgid, fd), fds.get((PARENT, fd), 0) if tgid == CHILD else 0)


def late_reads(src, reopen: bool, cloexec: bool) -> list[tuple[int, ...]]:  # noqa: F811
    """Handling times (after which system call each event is read) that leave the child's
    fd 3 wrong once user space has caught up: not sent though a log, or sent though a pipe."""
    bad = []
    n = len(spawn({}, reopen, cloexec))
    for slots in itertools.product(range(n), repeat=n):
        if any(s < i for i, s in enumerate(slots)) or list(slots) != sorted(slots):
            continue
        src.table, src.probe.fds = type(src.table)(cwd_of=lambda _: None), {(PARENT, 3): G1}
        feed(src, ev(E.OPEN, 3, tgid=PARENT, fdval=G1, arg1=E.AT_FDCWD, arg2=E.O_CLOEXEC if cloexec else 0,
                     data=A_LOG))
        steps = spawn(src.probe.fds, reopen, cloexec)
        for i, (kernel_op, _) in enumerate(steps):
            if kernel_op is not None:
                kernel_op()  # type: ignore[operator]
            feed(src, *(e for j, (_, e) in enumerate(steps) if slots[j] == i and e is not None))
        sends = lookup(src.probe.fds, CHILD, 3) & 0xFF == E.FD_SEND
        if sends != reopen:
            bad.append(slots)
    return bad


@pytest.mark.parametrize("cloexec", [False, True], ids=["close_range", "close-on-exec"])
def test_the_old_close_clears_the_childs_new_log_when_read_late(src, cloexec):  # noqa: F811
    def unconditional(tgid: int, fd: int, seen: int) -> None:
        if src.probe.fds.get((tgid, fd)):
            src.probe.fds[(tgid, fd)] = E.FD_GONE
    src.probe.close_fd = unconditional
    last = len(spawn({}, True, cloexec)) - 1
    assert (0,) + (last,) * last in late_reads(src, True, cloexec)  # the fork read in time, the rest after the open


@pytest.mark.parametrize("cloexec", [False, True], ids=["close_range", "close-on-exec"])
@pytest.mark.parametrize("reopen", [True, False], ids=["its own log", "a pipe"])
def test_no_late_read_of_a_close_leaves_the_childs_fd_3_wrong(src, reopen, cloexec):  # noqa: F811
    assert late_reads(src, reopen, cloexec) == []
