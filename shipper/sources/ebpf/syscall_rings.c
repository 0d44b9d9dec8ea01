// Syscall windows: a per-thread ring of the recent I/O syscalls of processes in the
// containers in snapshot scope, kept in the kernel so nothing crosses to user space
// while no trigger fires. Its own BPF object (shipper/snapshots/ring.py loads it): the
// programs are attached when the first container enters scope and detached when the
// last leaves, so with none in scope they cost nothing.
//
// Hook choice, by measurement (README, "What the snapshots cost"): one classic
// tracepoint per syscall a window shows (read/write/send/recv/open/connect/accept/close
// ...), not raw_syscalls or a raw sys_enter tracepoint: those run a program on every
// syscall of every process on the host, while a per-syscall tracepoint costs the rest
// of the host only the syscall slow-path tax that the write-capture probe already pays.
// The filter is the cheapest measured: an array indexed by tgid (scope_tgids, inlined
// by the verifier), kept by user space from the containers' cgroup.procs and by the
// sched fork/exit tracepoints here; a cgroup id + hash lookup cost more than the hook.
//
// Only tracepoint fields and BPF helpers are used (the kernel headers on these hosts do
// not match the running kernel's structs); with RS_FENTRY the arguments come from
// pt_regs (the x86_64 syscall ABI, ring.py's first choice where fentry is allowed).
//
// Tunables (-D, from SnapshotSettings; ring.py):
//   LOGSHIP_RING_ENTRIES  entries per thread, a power of two (index masking for the verifier)
//   LOGSHIP_RING_THREADS  threads with a ring at once (LRU: the least recently active goes)
//   LOGSHIP_DATA_BYTES    bytes of I/O data / path / sockaddr kept per entry (multiple of 8)
//   LOGSHIP_CAPTURE_DATA  0 compiles the I/O data copy out (paths and sockaddrs stay)
//   LOGSHIP_ARMED_MAX     threads armed for the "after" half at once
//   LOGSHIP_SNAP_PAGES    pages of the ring buffer that streams armed threads' syscalls
//   LOGSHIP_PID_MAX       /proc/sys/kernel/pid_max (size of scope_tgids)

#ifndef LOGSHIP_RING_ENTRIES
#define LOGSHIP_RING_ENTRIES 64
#endif
#ifndef LOGSHIP_RING_THREADS
#define LOGSHIP_RING_THREADS 1024
#endif
#ifndef LOGSHIP_DATA_BYTES
#define LOGSHIP_DATA_BYTES 128
#endif
#ifndef LOGSHIP_CAPTURE_DATA
#define LOGSHIP_CAPTURE_DATA 1
#endif
#ifndef LOGSHIP_IO_BYTES
#define LOGSHIP_IO_BYTES 80
#endif
#ifndef LOGSHIP_ARMED_MAX
#define LOGSHIP_ARMED_MAX 1024
#endif
#ifndef LOGSHIP_SNAP_PAGES
#define LOGSHIP_SNAP_PAGES 64
#endif
#ifndef LOGSHIP_PID_MAX
#define LOGSHIP_PID_MAX 32768
#endif

#define RS_MASK (LOGSHIP_RING_ENTRIES - 1)
#define RS_SOCKADDR_MAX (LOGSHIP_DATA_BYTES < 128 ? LOGSHIP_DATA_BYTES : 128)
#define RS_IO_MAX (LOGSHIP_IO_BYTES < LOGSHIP_DATA_BYTES ? LOGSHIP_IO_BYTES : LOGSHIP_DATA_BYTES)

// kind of the bytes in rs_entry.data
#define RS_DATA_NONE 0
#define RS_DATA_IO 1
#define RS_DATA_PATH 2
#define RS_DATA_SOCKADDR 3

// The layout is mirrored by shipper/snapshots/ring.py (ctypes): change both together.
struct rs_entry {
    u64 ts;          // sys_enter, bpf_ktime_get_ns (CLOCK_MONOTONIC)
    u64 dur;         // sys_exit - sys_enter
    u64 args[6];
    s64 ret;
    u32 tid;
    u16 nr;          // x86_64 syscall number
    u16 data_len;    // valid bytes in data
    u8 kind;         // RS_DATA_*
    u8 done;         // 1 once sys_exit filled ret/dur
    u8 pad[6];
    char data[LOGSHIP_DATA_BYTES];
};

struct rs_ring {
    u64 head;        // entries completed so far; slot = head & RS_MASK; head - ENTRIES = overwritten
    struct rs_entry e[LOGSHIP_RING_ENTRIES];
};

struct rs_armed {
    u64 until;       // stream this thread's syscalls until this ktime
    u64 sent;
    u64 lost;        // ring buffer full: counted, shown in the snapshot
};

// Processes (by tgid) of the containers in scope: 1 = keep a ring for its threads.
BPF_ARRAY(scope_tgids, u32, LOGSHIP_PID_MAX);
BPF_TABLE("lru_hash", u32, struct rs_ring, rings, LOGSHIP_RING_THREADS);
BPF_ARRAY(rs_zero, struct rs_ring, 1);  // never written: the initial value of a new ring
BPF_HASH(armed_tids, u32, struct rs_armed, LOGSHIP_ARMED_MAX);
BPF_ARRAY(armed_any, u32, 1);  // 1 while armed_tids has entries: no hash lookup per syscall otherwise
BPF_RINGBUF_OUTPUT(snap_events, LOGSHIP_SNAP_PAGES);

static __always_inline int rs_in_scope(u32 tgid) {
    u32 *v = scope_tgids.lookup(&tgid);
    return v && *v;
}

static __always_inline void rs_copy_sockaddr(struct rs_entry *e, const void *addr, u64 len) {
    if (len > RS_SOCKADDR_MAX)
        len = RS_SOCKADDR_MAX;
    if (bpf_probe_read_user(e->data, len, addr) == 0) {
        e->data_len = len;
        e->kind = RS_DATA_SOCKADDR;
    }
}

static __always_inline void rs_copy_path(struct rs_entry *e, const void *path) {
    int n = bpf_probe_read_user_str(e->data, LOGSHIP_DATA_BYTES, path);
    if (n > 0) {
        e->data_len = n - 1;
        e->kind = RS_DATA_PATH;
    }
}

static __always_inline int rs_enter(u32 nr, const u64 *args) {
    u64 id = bpf_get_current_pid_tgid();
    if (!rs_in_scope(id >> 32))
        return 0;
    u32 tid = (u32)id;
    struct rs_ring *r = rings.lookup(&tid);
    if (!r) {
        int zero = 0;
        struct rs_ring *z = rs_zero.lookup(&zero);
        if (!z)
            return 0;
        r = rings.lookup_or_try_init(&tid, z);
        if (!r)
            return 0;
    }
    struct rs_entry *e = &r->e[r->head & RS_MASK];
    e->ts = bpf_ktime_get_ns();
    e->dur = 0;
    e->ret = 0;
    e->tid = tid;
    e->nr = (u16)nr;
    e->data_len = 0;
    e->kind = RS_DATA_NONE;
    e->done = 0;
#pragma unroll
    for (int i = 0; i < 6; i++)
        e->args[i] = args[i];
    // Names given by the caller: copied now, so a snapshot shows them even when the fd
    // was opened inside the window (and for a short-lived process gone before /proc).
    switch (nr) {
    case 2:    // open(path, ...)
    case 85:   // creat(path, mode)
        rs_copy_path(e, (const void *)args[0]);
        break;
    case 257:  // openat(dirfd, path, ...)
    case 437:  // openat2(dirfd, path, ...)
        rs_copy_path(e, (const void *)args[1]);
        break;
    case 42:   // connect(fd, addr, len)
    case 49:   // bind(fd, addr, len)
        rs_copy_sockaddr(e, (const void *)args[1], args[2]);
        break;
    }
    return 0;
}

#if LOGSHIP_CAPTURE_DATA
// The user buffer of the read/write family (first iovec for readv/writev, sendmsg/recvmsg), or 0.
static __always_inline const void *rs_io_buffer(struct rs_entry *e) {
    switch (e->nr) {
    case 0: case 1: case 17: case 18: case 44: case 45:  // read write pread64 pwrite64 sendto recvfrom
        return (const void *)e->args[1];
    case 19: case 20: case 295: case 296: {              // readv writev preadv pwritev
        struct { const void *base; u64 len; } iov = {};
        if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)e->args[1]) != 0)
            return 0;
        return iov.base;
    }
    case 46: case 47: {                                  // sendmsg recvmsg: msghdr.msg_iov[0]
        struct { u64 name; u32 namelen; u32 pad; u64 iov; u64 iovlen; } m = {};
        struct { const void *base; u64 len; } iov = {};
        if (bpf_probe_read_user(&m, sizeof(m), (const void *)e->args[1]) != 0 || !m.iov || !m.iovlen)
            return 0;
        if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)m.iov) != 0)
            return 0;
        return iov.base;
    }
    }
    return 0;
}
#endif

static __always_inline int rs_exit(u32 nr, s64 ret) {
    u64 id = bpf_get_current_pid_tgid();
    if (!rs_in_scope(id >> 32))
        return 0;
    u32 tid = (u32)id;
    struct rs_ring *r = rings.lookup(&tid);
    if (!r)
        return 0;
    struct rs_entry *e = &r->e[r->head & RS_MASK];
    if (e->done || e->tid != tid || e->nr != (u16)nr)
        return 0;  // its enter was not seen (attached mid-syscall)
    u64 now = bpf_ktime_get_ns();
    e->dur = now - e->ts;
    e->ret = ret;
    e->done = 1;
#if LOGSHIP_CAPTURE_DATA
    if (ret > 0 && e->kind == RS_DATA_NONE) {
        const void *buf = rs_io_buffer(e);
        if (buf) {
            u64 n = ret;
            if (n > RS_IO_MAX)
                n = RS_IO_MAX;
            if (bpf_probe_read_user(e->data, n, buf) == 0) {
                e->data_len = n;
                e->kind = RS_DATA_IO;
            }
        }
    }
#endif
    r->head++;  // the thread itself is the only writer of its ring
    int zero = 0;
    u32 *any = armed_any.lookup(&zero);
    if (!any || !*any)
        return 0;
    struct rs_armed *a = armed_tids.lookup(&tid);
    if (a && now <= a->until) {
        if (snap_events.ringbuf_output(e, sizeof(*e), 0) == 0)
            a->sent++;
        else
            a->lost++;
    }
    return 0;
}

#ifdef RS_FENTRY
// fentry/fexit on the syscall's x64 entry point: no slow path for anyone. The entry
// point takes the user registers; the arguments are read from them by the syscall ABI
// (rdi rsi rdx r10 r8 r9), with a layout of our own, never the kernel's headers.
struct rs_abi_regs {
    u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
};
#define RS_SYSCALL(name, nr)                                                                  \
    KFUNC_PROBE(__x64_sys_##name, const void *regs) {                                         \
        struct rs_abi_regs r = {};                                                            \
        bpf_probe_read_kernel(&r, sizeof(r), regs);                                           \
        u64 a[6] = {r.di, r.si, r.dx, r.r10, r.r8, r.r9};                                     \
        return rs_enter(nr, a);                                                               \
    }                                                                                         \
    KRETFUNC_PROBE(__x64_sys_##name, const void *regs, long ret) { return rs_exit(nr, ret); }
#else
// The classic syscalls:sys_enter_<name> / sys_exit_<name> records (tracefs format files):
// the common header, __syscall_nr, then the arguments (8 bytes each) or the return value.
struct rs_tp_enter {
    u64 common;
    s32 nr;
    u32 pad;
    u64 args[6];
};
struct rs_tp_exit {
    u64 common;
    s32 nr;
    u32 pad;
    s64 ret;
};
// nargs: the tracepoint has that many argument fields; past them is not its record.
#define RS_SYSCALL(name, nr, nargs)                                                           \
    int rs_enter_##name(struct rs_tp_enter *ctx) {                                            \
        u64 a[6] = {};                                                                        \
        _Pragma("unroll") for (int i = 0; i < 6; i++) if (i < nargs) a[i] = ctx->args[i];      \
        return rs_enter(nr, a);                                                               \
    }                                                                                         \
    int rs_exit_##name(struct rs_tp_exit *ctx) { return rs_exit(nr, ctx->ret); }
#endif

#ifdef RS_FENTRY
#define RS(name, nr, nargs) RS_SYSCALL(name, nr)
#else
#define RS(name, nr, nargs) RS_SYSCALL(name, nr, nargs)
#endif

// The syscalls a window shows (ring.py: SYSCALLS lists the same names for attaching).
RS(read, 0, 3)
RS(write, 1, 3)
RS(open, 2, 3)
RS(close, 3, 1)
RS(pread64, 17, 4)
RS(pwrite64, 18, 4)
RS(readv, 19, 3)
RS(writev, 20, 3)
RS(sendfile64, 40, 4)
RS(socket, 41, 3)
RS(connect, 42, 3)
RS(accept, 43, 3)
RS(sendto, 44, 6)
RS(recvfrom, 45, 6)
RS(sendmsg, 46, 3)
RS(recvmsg, 47, 3)
RS(shutdown, 48, 2)
RS(bind, 49, 3)
RS(listen, 50, 2)
RS(fsync, 74, 1)
RS(creat, 85, 2)
RS(openat, 257, 4)
RS(accept4, 288, 4)
RS(preadv, 295, 5)
RS(pwritev, 296, 5)
RS(openat2, 437, 4)

// Processes enter and leave scope with their parents: a child of a process in scope is
// in scope from its first syscall (user space's cgroup.procs pass would come too late
// for a short-lived one). Attached and detached with the syscall programs.
TRACEPOINT_PROBE(sched, sched_process_fork) {
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    if (!rs_in_scope(parent))
        return 0;
    u32 child = args->child_pid;
    u32 one = 1;
    scope_tgids.update(&child, &one);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    if (!rs_in_scope(tgid))
        return 0;
    u32 zero = 0;
    // A thread's entry (set at its clone) goes with it; the process's with its last thread.
    if (tid != tgid)
        scope_tgids.update(&tid, &zero);
    if (args->group_dead)
        scope_tgids.update(&tgid, &zero);
    return 0;
}
