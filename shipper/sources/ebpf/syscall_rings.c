// Syscall windows: a per-thread ring of each traced thread's recent syscalls, kept in
// the kernel so nothing crosses to user space while no trigger fires. Included at the
// end of probe.c (under LOGSHIP_RINGS), which provides logship_should_trace().
//
// Only tracepoint arguments and BPF helpers are used (the kernel headers on this host
// do not match the running kernel's struct layouts).
//
// Tunables (-D, from SnapshotSettings):
//   LOGSHIP_RING_ENTRIES  entries per thread, a power of two (index masking for the verifier)
//   LOGSHIP_RING_THREADS  threads with a ring at once (LRU: the least recently active goes)
//   LOGSHIP_DATA_BYTES    bytes of I/O data / path / sockaddr kept per entry (multiple of 8)
//   LOGSHIP_CAPTURE_DATA  0 compiles the I/O data copy out (paths and sockaddrs stay)
//   LOGSHIP_ARMED_MAX     threads armed for the "after" half at once
//   LOGSHIP_SNAP_PAGES    pages of the ring buffer that streams armed threads' syscalls

#ifndef LOGSHIP_RING_ENTRIES
#define LOGSHIP_RING_ENTRIES 64
#endif
#ifndef LOGSHIP_RING_THREADS
#define LOGSHIP_RING_THREADS 1024
#endif
#ifndef LOGSHIP_DATA_BYTES
#define LOGSHIP_DATA_BYTES 256
#endif
#ifndef LOGSHIP_CAPTURE_DATA
#define LOGSHIP_CAPTURE_DATA 1
#endif
#ifndef LOGSHIP_ARMED_MAX
#define LOGSHIP_ARMED_MAX 1024
#endif
#ifndef LOGSHIP_SNAP_PAGES
#define LOGSHIP_SNAP_PAGES 64
#endif

#define RS_MASK (LOGSHIP_RING_ENTRIES - 1)
#define RS_SOCKADDR_MAX (LOGSHIP_DATA_BYTES < 128 ? LOGSHIP_DATA_BYTES : 128)

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

// The raw_syscalls tracepoint records (tracefs format files). Declared here because
// bcc generates TRACEPOINT_PROBE argument structs only for its main file, and this one
// is #included.
struct rs_sys_enter_args {
    u64 common;
    long id;
    unsigned long args[6];
};

struct rs_sys_exit_args {
    u64 common;
    long id;
    long ret;
};

BPF_TABLE("lru_hash", u32, struct rs_ring, rings, LOGSHIP_RING_THREADS);
BPF_ARRAY(rs_zero, struct rs_ring, 1);  // never written: the initial value of a new ring
BPF_HASH(armed_tids, u32, struct rs_armed, LOGSHIP_ARMED_MAX);
BPF_RINGBUF_OUTPUT(snap_events, LOGSHIP_SNAP_PAGES);

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

// Named tracepoint__<category>__<event>: bcc attaches it to that tracepoint.
int tracepoint__raw_syscalls__sys_enter(struct rs_sys_enter_args *args) {
    if (!logship_should_trace())
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
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
    e->nr = (u16)args->id;
    e->data_len = 0;
    e->kind = RS_DATA_NONE;
    e->done = 0;
#pragma unroll
    for (int i = 0; i < 6; i++)
        e->args[i] = args->args[i];
    // Names given by the caller: copied now, so a snapshot shows them even when the fd
    // was opened inside the window (and for a short-lived process gone before /proc).
    switch (args->id) {
    case 2:    // open(path, ...)
    case 85:   // creat(path, mode)
        rs_copy_path(e, (const void *)args->args[0]);
        break;
    case 257:  // openat(dirfd, path, ...)
    case 437:  // openat2(dirfd, path, ...)
        rs_copy_path(e, (const void *)args->args[1]);
        break;
    case 42:   // connect(fd, addr, len)
    case 49:   // bind(fd, addr, len)
        rs_copy_sockaddr(e, (const void *)args->args[1], args->args[2]);
        break;
    case 44:   // sendto(fd, buf, len, flags, addr, alen): the destination, when given
        break;
    }
    return 0;
}

#if LOGSHIP_CAPTURE_DATA
// The user buffer of the read/write family (first iovec for readv/writev), or 0.
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
    }
    return 0;
}
#endif

int tracepoint__raw_syscalls__sys_exit(struct rs_sys_exit_args *args) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct rs_ring *r = rings.lookup(&tid);
    if (!r)
        return 0;
    struct rs_entry *e = &r->e[r->head & RS_MASK];
    if (e->done || e->tid != tid || e->nr != (u16)args->id)
        return 0;  // its sys_enter was not seen (probe attached mid-syscall)
    u64 now = bpf_ktime_get_ns();
    e->dur = now - e->ts;
    e->ret = args->ret;
    e->done = 1;
#if LOGSHIP_CAPTURE_DATA
    if (args->ret > 0 && e->kind == RS_DATA_NONE) {
        const void *buf = rs_io_buffer(e);
        if (buf) {
            u64 n = args->ret;
            if (n > LOGSHIP_DATA_BYTES)
                n = LOGSHIP_DATA_BYTES;
            if (bpf_probe_read_user(e->data, n, buf) == 0) {
                e->data_len = n;
                e->kind = RS_DATA_IO;
            }
        }
    }
#endif
    r->head++;  // the thread itself is the only writer of its ring
    struct rs_armed *a = armed_tids.lookup(&tid);
    if (a && now <= a->until) {
        if (snap_events.ringbuf_output(e, sizeof(*e), 0) == 0)
            a->sent++;
        else
            a->lost++;
    }
    return 0;
}
