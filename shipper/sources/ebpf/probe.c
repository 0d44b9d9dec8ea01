// logship eBPF probe: log-file and /dev/log writes of processes in shipped containers.
//
// Only tracepoint arguments and BPF helpers are used: the kernel headers bcc compiles
// against need not match the running kernel, so no kernel struct is ever read. The
// user-space structs read here (iovec, user_msghdr, mmsghdr, sockaddr_un) are ABI.
//
// Filtering happens here so that only interesting bytes cross to user space:
//   1. the writer's cgroup is a shipped container (shipped_cgroups, kept by user space)
//      or a new one not reported yet (see logship_new_container), and the writer is not
//      the shipper itself (LOGSHIP_SELF_TGID). That decision is cached per process
//      (tgid_filter, an array indexed by tgid, inlined by the verifier): the write family
//      runs for every write of the host, and a cgroup id + hash lookup per syscall cost
//      more than the tracepoint itself (bench/snapshots.py). It is made again after an
//      exec, for a new process, and for all after user space changes the shipped set
//      (filter_gen); exits clear it, so a reused pid starts afresh;
//   2. the fd is a candidate (fd_state): a file just opened is SEND until user space has
//      matched its path and found it is no log (then SKIP), a unix socket connected to
//      /dev/log is SYSLOG; fds absent from fd_state (pipes, tcp sockets, ...) are never
//      captured. The upper 24 bits of an fd_state value are the generation of the open
//      that set it (or connect to /dev/log), so user space never marks SKIP, nor clears
//      after a close_range or exec it reads late, an fd that was reopened meanwhile. An
//      entry the kernel set is never deleted here, only made GONE (closed, a socket, dup'ed
//      over by an untracked fd): user space fills in fds opened before tracing began from
//      /proc, which is older than anything the kernel saw, only where no entry is
//      (loader.py adopt_fd). (A shell's `>> log` moves its stdout onto the log and back
//      within microseconds; a /proc read in between must not leave stdout marked SEND.)
// fd-table events (open, dup, close, socket, connect, fork, exec, exit) of the filtered
// cgroups also go to user space, which keeps the fd -> path table (FdTable).
//
//   3. each container's write events are within its ring budget (admit: a GCRA token
//      bucket per cgroup, LOGSHIP_BUDGET_*), so one flooding container cannot fill the ring
//      the others share; what it is refused is counted per cgroup (cg_drops).
//
// Build-time defines (set by loader.py): LOGSHIP_SELF_TGID, LOGSHIP_CAPTURE (power of two), LOGSHIP_NCPU,
// LOGSHIP_RINGBUF_PAGES, LOGSHIP_PID_SLOTS (size of the per-pid arrays), LOGSHIP_BUDGET_NS_PER_KIB
// (ring time a KiB of events costs a container; 0 = no budget), LOGSHIP_BUDGET_BURST_NS.
// (The snapshots' syscall rings are a BPF object of their own.)

#ifndef LOGSHIP_SELF_TGID
#define LOGSHIP_SELF_TGID 0
#endif
#ifndef LOGSHIP_CAPTURE
#define LOGSHIP_CAPTURE 4096
#endif
#ifndef LOGSHIP_NCPU
#error "LOGSHIP_NCPU (the possible CPUs: the write scratch has a slot for each) is set by loader.py"
#endif
#ifndef LOGSHIP_RINGBUF_PAGES
#define LOGSHIP_RINGBUF_PAGES 4096
#endif
#ifndef LOGSHIP_PID_SLOTS
#define LOGSHIP_PID_SLOTS 32768
#endif
#ifndef LOGSHIP_BUDGET_NS_PER_KIB
#define LOGSHIP_BUDGET_NS_PER_KIB 0
#endif
#ifndef LOGSHIP_BUDGET_BURST_NS
#define LOGSHIP_BUDGET_BURST_NS 0
#endif
#define LOGSHIP_MAX_IOV 8
#define LOGSHIP_MAX_MMSG 4
#define LOGSHIP_PATH 256
#define LOGSHIP_ADDR 112

// Event kinds (events.py mirrors these).
#define EV_WRITE 1
#define EV_OPEN 2
#define EV_DUP 3
#define EV_CLOSE 4
#define EV_SOCKET 5
#define EV_CONNECT 6
#define EV_FORK 7
#define EV_EXEC 8
#define EV_EXIT 9
#define EV_CGROUP 10

// fd_state values (low 8 bits).
#define FD_SEND 1
#define FD_SKIP 3
#define FD_SYSLOG 4
#define FD_GONE 4294967040  // 0xffffff00: state 0 (not captured), and the kernel knows it
#define FD_STATE(v) ((v) & 0xff)

// Drop reasons counted in drops[] (events.py: DROP_REASONS).
#define DROP_RING_DATA 0
#define DROP_RING_META 1
#define DROP_READ 2
#define DROP_STASH_FULL 3
#define DROP_BUDGET 4
#define N_DROPS 5

// Per-cgroup drop counters (struct cg_drops; events.py: CG_DROP_REASONS).
#define CG_DROP_BUDGET 0
#define CG_DROP_RING 1
#define N_CG_DROPS 2

// tgid_filter values: (generation << 2) | TF_*; 0 = not decided yet.
#define TF_TRACED 1
#define TF_FORKED 2  // fork_parent may hold its parent (fd_lookup's fallback)

// Flags of a write event.
#define WF_TRUNCATED 1
#define WF_SYSLOG_ADDR 2  // sendto/sendmsg with a sockaddr_un naming /dev/log
// Write events of this cgroup were lost (refused by its budget, the ring full, a failed read)
// since its previous one: a file's writes may be missing before this one, so user space
// places it by content, not at the file's cursor (filetrack.py), and reads the gap back.
#define WF_AFTER_LOSS 4

// No wakeup per event: waking the consumer costs the writer more than the capture itself
// (irq_work + a scheduler wakeup per write). User space consumes every few ms instead.
#define RB_FLAGS BPF_RB_NO_WAKEUP

#define AT_FDCWD_ -100
// Hides a value's history from the compiler so the mask right after it is what the
// verifier sees (clang otherwise folds it into signed arithmetic the verifier rejects).
#define opaque(x) asm volatile("" : "+r"(x))
#define AF_UNIX_ 1

struct hdr {
    u8 kind;
    u8 flags;
    u16 pad;
    u32 tgid;
    u32 tid;
    s32 fd;    // the fd the event is about (open: the new fd)
    u32 fdval; // fd_state value of the fd (write: as looked up; open, dup, connect: as set)
    u32 pad2;
    u64 ktime;
    u64 cgroup;
    s64 arg1;  // write: bytes written; open: dirfd; dup: old fd; close: max fd; socket: family; fork: child pid; exit: group_dead
    s64 arg2;  // open: flags; dup: flags (O_CLOEXEC); socket: type; connect: addrlen
};

struct write_ev {
    struct hdr h;
    char comm[16];
    u32 len;   // captured bytes that follow
    u32 pad;
    // Only header + len bytes are sent; the slack lets the verifier accept masked
    // (offset < CAPTURE) + (size < 2 * CAPTURE) copies without exact bounds tracking.
    char data[3 * LOGSHIP_CAPTURE];
};

struct path_ev {
    struct hdr h;
    char path[LOGSHIP_PATH];
};

// struct iovec of user space (ABI: pointer, length).
struct uiovec {
    u64 base;
    u64 len;
};

struct fdkey {
    u32 tgid;
    u32 fd;
};

// What a syscall's enter saw, for its exit (per thread).
struct stash {
    u64 ptr;    // buf / iovec array / msghdr / filename
    u64 count;  // count / vlen / dirfd
    u32 fd;
    u32 fdval;
    u8 kind;    // EV_WRITE with one of the W_* shapes below, EV_OPEN, EV_DUP
    u8 shape;
    u8 flags;
    u8 pad;
    s64 arg2;
};

#define W_BUF 1
#define W_IOV 2
#define W_MSG 3
#define W_MMSG 4

// Write events a cgroup was refused: [CG_DROP_*] events, then the bytes of the refused ones.
struct cg_drops {
    u64 events[N_CG_DROPS];
    u64 bytes;
};

BPF_HASH(shipped_cgroups, u64, u8, 4096);
BPF_ARRAY(filter_gen, u32, 1);  // bumped by user space whenever the shipped set changes
BPF_ARRAY(tgid_filter, u32, LOGSHIP_PID_SLOTS);
BPF_ARRAY(pending, u32, LOGSHIP_PID_SLOTS);  // by tid: 1 = its syscall's enter stashed something
// cgroup -> GCRA theoretical arrival time (ktime ns), its bit 0 set while an event of the
// cgroup was lost since its last one sent (WF_AFTER_LOSS)
BPF_HASH(cg_budget, u64, u64, 4096);
BPF_HASH(cg_drops, u64, struct cg_drops, 4096);
BPF_HASH(fd_state, struct fdkey, u32, 65536);
BPF_HASH(fork_parent, u32, u32, 16384);
BPF_HASH(stash_map, u64, struct stash, 65536);
// One write_ev per CPU (indexed by the CPU: tracepoint programs run with preemption off, so
// a slot has one user at a time). A plain array, as a per-CPU map's value is capped at 32 KiB
// and a write_ev holds 3 * CAPTURE bytes.
BPF_ARRAY(scratch, struct write_ev, LOGSHIP_NCPU);
BPF_PERCPU_ARRAY(path_scratch, struct path_ev, 1);
BPF_PERCPU_ARRAY(drops, u64, N_DROPS);
BPF_RINGBUF_OUTPUT(events, LOGSHIP_RINGBUF_PAGES);

// A container writes before Docker has told user space about it (its first lines, or all
// of a short-lived one): cgroups under a watched parent (e.g. /docker, set by user space:
// watch[0] = its level, watch[1] = its id) are traced before they are shipped, until user
// space ships them or gives up on them (unclaimed_cgroups: not shipped, e.g. LOGSPOUT=ignore).
BPF_ARRAY(watch, u64, 2);
BPF_HASH(unclaimed_cgroups, u64, u8, 4096);

static __always_inline int logship_new_container(u64 cg) {
    int k = 0;
    u64 *level = watch.lookup(&k);
    if (!level || !*level)
        return 0;
    k = 1;
    u64 *parent = watch.lookup(&k);
    if (!parent || cg == *parent || bpf_get_current_ancestor_cgroup_id(*level) != *parent)
        return 0;
    return !unclaimed_cgroups.lookup(&cg);
}

// The uncached decision: the writer's cgroup is shipped (or new, under the watched parent)
// and the writer is not the shipper.
static __always_inline int logship_decide(u32 tgid) {
    u64 cg = bpf_get_current_cgroup_id();
    if (!shipped_cgroups.lookup(&cg) && !logship_new_container(cg))
        return 0;
    return tgid != LOGSHIP_SELF_TGID;
}

// TF_* flags of the process, decided once per process and filter generation.
static __always_inline u32 logship_flags(u32 tgid) {
    int z = 0;
    u32 *g = filter_gen.lookup(&z);
    u32 gen = (g ? *g : 0) + 1;  // + 1: an entry never written (0) is never current
    u32 *v = tgid_filter.lookup(&tgid);
    if (!v)  // a pid beyond LOGSHIP_PID_SLOTS (pid_max raised after load): no cache
        return logship_decide(tgid) ? TF_TRACED | TF_FORKED : 0;
    u32 cur = *v;
    if ((cur >> 2) == gen)
        return cur & 3;
    u32 f = (logship_decide(tgid) ? TF_TRACED : 0) | (cur & TF_FORKED);
    *v = (gen << 2) | f;
    return f;
}

static __always_inline int logship_should_trace(void) {
    return logship_flags(bpf_get_current_pid_tgid() >> 32) & TF_TRACED;
}

static __always_inline void count_drop(int reason) {
    u64 *n = drops.lookup(&reason);
    if (n)
        (*n)++;
}

// A write event of `bytes` (ring bytes) the cgroup could not send, counted for it.
static __always_inline void count_cg_drop(u64 cg, int reason, u64 bytes) {
    struct cg_drops *d = cg_drops.lookup(&cg);
    if (!d) {
        struct cg_drops init = {};
        cg_drops.update(&cg, &init);  // BPF_NOEXIST is not needed: a racing insert only loses one count
        d = cg_drops.lookup(&cg);
        if (!d)
            return;
    }
    if (reason == CG_DROP_BUDGET)
        __sync_fetch_and_add(&d->events[CG_DROP_BUDGET], 1);
    else
        __sync_fetch_and_add(&d->events[CG_DROP_RING], 1);
    __sync_fetch_and_add(&d->bytes, bytes);
}

// A write event of the cgroup was lost after its budget let it through: its next one says so.
static __always_inline void mark_loss(u64 cg) {
    u64 *tat = cg_budget.lookup(&cg);
    if (tat) {
        __sync_fetch_and_or(tat, 1);
    } else {
        u64 mark = bpf_ktime_get_ns() | 1;
        cg_budget.update(&cg, &mark);
    }
}

// Whether the cgroup may put `bytes` more into the ring now: 0 = no, 1 = yes, 2 = yes and an
// event of it was lost since its last one (WF_AFTER_LOSS). GCRA (a token bucket kept as one
// time per cgroup): each KiB costs LOGSHIP_BUDGET_NS_PER_KIB of ring time, and a cgroup may
// be up to LOGSHIP_BUDGET_BURST_NS ahead of now. Updates race between CPUs (no lock in a
// tracepoint program): a lost update lets one event more through, never fewer.
static __always_inline int admit(u64 cg, u64 bytes) {
    u64 now = bpf_ktime_get_ns();
    u64 *tat = cg_budget.lookup(&cg);
#if LOGSHIP_BUDGET_NS_PER_KIB > 0
    if (!tat) {
        cg_budget.update(&cg, &now);
        tat = cg_budget.lookup(&cg);
        if (!tat)
            return 1;  // the map is full (4,096 cgroups): no budget rather than no logs
    }
    u64 old = *tat;
    u64 t = old > now ? old : now;
    u64 next = t + ((bytes * LOGSHIP_BUDGET_NS_PER_KIB) >> 10);
    if (next > now + LOGSHIP_BUDGET_BURST_NS) {
        count_drop(DROP_BUDGET);
        count_cg_drop(cg, CG_DROP_BUDGET, bytes);
        __sync_fetch_and_or(tat, 1);
        return 0;
    }
    // (an exchange: a mark another CPU set since `old` was read is not lost)
    return (__sync_lock_test_and_set(tat, next & ~1ULL) & 1) ? 2 : 1;
#else
    if (tat && (*tat & 1))
        return (__sync_lock_test_and_set(tat, now & ~1ULL) & 1) ? 2 : 1;
    return 1;
#endif
}

static __always_inline void fill_hdr(struct hdr *h, u8 kind, s32 fd) {
    u64 id = bpf_get_current_pid_tgid();
    h->kind = kind;
    h->flags = 0;
    h->pad = 0;
    h->fdval = 0;
    h->pad2 = 0;
    h->tgid = id >> 32;
    h->tid = (u32)id;
    h->fd = fd;
    h->ktime = bpf_ktime_get_ns();
    h->cgroup = bpf_get_current_cgroup_id();
    h->arg1 = 0;
    h->arg2 = 0;
}

static __always_inline void emit_meta(u8 kind, s32 fd, s64 arg1, s64 arg2, u32 fdval) {
    struct hdr h = {};
    fill_hdr(&h, kind, fd);
    h.fdval = fdval;
    h.arg1 = arg1;
    h.arg2 = arg2;
    if (events.ringbuf_output(&h, sizeof(h), RB_FLAGS) < 0)
        count_drop(DROP_RING_META);
}

// The fd's capture state; a child that has not been copied by user space yet
// (fork just happened) falls back to its parent's fds.
// forked: the process's TF_FORKED (only a traced parent's child can have a fork_parent entry).
static __always_inline u32 fd_lookup(u32 tgid, u32 fd, u32 forked) {
    struct fdkey k = {.tgid = tgid, .fd = fd};
    u32 *st = fd_state.lookup(&k);
    if (st)
        return *st;
    if (!forked)
        return 0;
    u32 *parent = fork_parent.lookup(&tgid);
    if (!parent)
        return 0;
    k.tgid = *parent;
    st = fd_state.lookup(&k);
    return st ? *st : 0;
}

static __always_inline void fd_mark(u32 fd, u32 st) {
    struct fdkey k = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
    if (st) {
        fd_state.update(&k, &st);
        return;
    }
    u32 *cur = fd_state.lookup(&k);  // (no entry: the kernel never saw a candidate there)
    if (cur)
        *cur = FD_GONE;
}

// 1 when the user-space sockaddr at addr is AF_UNIX "/dev/log".
static __always_inline int is_dev_log(const void *addr) {
    char sa[12] = {};
    if (!addr || bpf_probe_read_user(sa, sizeof(sa), addr) != 0)
        return 0;
    // sockaddr_un: sa_family_t (u16) then sun_path.
    return sa[0] == AF_UNIX_ && sa[1] == 0 && sa[2] == '/' && sa[3] == 'd' && sa[4] == 'e' && sa[5] == 'v' &&
           sa[6] == '/' && sa[7] == 'l' && sa[8] == 'o' && sa[9] == 'g' && sa[10] == 0;
}

// A thread's stash entry is reused in place (kind 0 = empty) and removed at its exit:
// a hash update or delete per syscall would cost a bucket lock and an allocation each.
// pending[tid] says whether there is one at all, so the exit of every other syscall of the
// host costs an inlined array lookup, not a hash lookup.
static __always_inline void stash_put(u64 id, struct stash *s) {
    u32 tid = (u32)id;
    u32 *p = pending.lookup(&tid);
    struct stash *cur = stash_map.lookup(&id);
    if (cur) {
        *cur = *s;
    } else if (stash_map.update(&id, s) != 0) {
        count_drop(DROP_STASH_FULL);
        return;
    }
    if (p)
        *p = 1;
}

static __always_inline int stash_take(u64 id, struct stash *out) {
    u32 tid = (u32)id;
    u32 *p = pending.lookup(&tid);
    if (p) {  // (no slot: a tid beyond LOGSHIP_PID_SLOTS, always looked up)
        if (!*p)
            return 0;
        *p = 0;
    }
    struct stash *cur = stash_map.lookup(&id);
    if (!cur || cur->kind == 0)
        return 0;
    *out = *cur;
    cur->kind = 0;
    return 1;
}

// ---- write family: decide at enter, capture at exit ------------------------------------

static __always_inline int stash_write(u32 fd, u8 shape, const void *ptr, u64 count, int syslog_addr) {
    u64 id = bpf_get_current_pid_tgid();
    u32 flags = logship_flags(id >> 32);
    if (!(flags & TF_TRACED))
        return 0;
    u32 st = fd_lookup(id >> 32, fd, flags & TF_FORKED);
    if (FD_STATE(st) == 0)
        st = 0;  // (GONE)
    if (FD_STATE(st) == FD_SKIP || (st == 0 && !syslog_addr))
        return 0;
    struct stash s = {};
    s.ptr = (u64)ptr;
    s.count = count;
    s.fd = fd;
    s.kind = EV_WRITE;
    s.shape = shape;
    s.fdval = st;
    s.flags = syslog_addr ? WF_SYSLOG_ADDR : 0;
    stash_put(id, &s);
    return 0;
}

// Copy up to `want` bytes from a user iovec array into e->data; returns bytes copied.
static __always_inline u32 copy_iov(struct write_ev *e, const struct uiovec *vec, u64 vlen, u32 want) {
    u32 off = 0;
#pragma unroll
    for (int i = 0; i < LOGSHIP_MAX_IOV; i++) {
        if (i >= vlen || off >= want)
            break;
        struct uiovec iov = {};
        if (bpf_probe_read_user(&iov, sizeof(iov), &vec[i]) != 0)
            break;
        u32 n = iov.len < (u64)(want - off) ? (u32)iov.len : want - off;
        if (off >= LOGSHIP_CAPTURE || n > LOGSHIP_CAPTURE)
            break;
        // Masks prove the bounds to the verifier: off < CAPTURE and n <= CAPTURE - off.
        u32 o = off & (LOGSHIP_CAPTURE - 1);
        if (n > LOGSHIP_CAPTURE - o)
            n = LOGSHIP_CAPTURE - o;
        if (n == 0)
            continue;
        u64 o64 = o, n64 = n;
        opaque(o64);
        opaque(n64);
        o64 &= LOGSHIP_CAPTURE - 1;
        n64 &= 2 * LOGSHIP_CAPTURE - 1;
        if (bpf_probe_read_user(e->data + o64, n64, (void *)iov.base) != 0)
            break;
        off += n;
    }
    return off;
}

// A msghdr's iovecs; sets *syslog when its msg_name is /dev/log.
static __always_inline u32 copy_msg(struct write_ev *e, const void *msg, u32 want, int *syslog) {
    // struct user_msghdr: void *name; int namelen; (pad) struct iovec *iov; size_t iovlen; ...
    struct {
        u64 name;
        u32 namelen;
        u32 pad;
        u64 iov;
        u64 iovlen;
    } m = {};
    if (bpf_probe_read_user(&m, sizeof(m), msg) != 0)
        return 0;
    if (m.name && is_dev_log((void *)m.name))
        *syslog = 1;
    return copy_iov(e, (const struct uiovec *)m.iov, m.iovlen, want);
}

static __always_inline struct write_ev *start_write(struct stash *s, s64 ret) {
    u32 cpu = bpf_get_smp_processor_id();
    struct write_ev *e = scratch.lookup(&cpu);
    if (!e) {  // (no slot for this CPU: not with LOGSHIP_NCPU right; counted if it happens)
        count_drop(DROP_RING_DATA);
        mark_loss(bpf_get_current_cgroup_id());
        return 0;
    }
    fill_hdr(&e->h, EV_WRITE, s->fd);
    e->h.fdval = s->fdval;
    e->h.flags = s->flags;
    e->h.arg1 = ret;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    e->len = 0;
    return e;
}

static __always_inline void submit_write(struct write_ev *e, u32 len, s64 ret) {
    if (ret > (s64)len)
        e->h.flags |= WF_TRUNCATED;
    e->len = len;
    u64 size = len;
    opaque(size);
    size &= 2 * LOGSHIP_CAPTURE - 1;
    size += offsetof(struct write_ev, data);
    if (events.ringbuf_output(e, size, RB_FLAGS) < 0) {
        count_drop(DROP_RING_DATA);
        count_cg_drop(e->h.cgroup, CG_DROP_RING, size);
        mark_loss(e->h.cgroup);
    }
}

static __always_inline int finish_write(s64 ret) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash st;
    if (!stash_take(id, &st))
        return 0;
    if (ret <= 0 || st.kind != EV_WRITE)
        return 0;
    u32 want = ret < LOGSHIP_CAPTURE ? (u32)ret : LOGSHIP_CAPTURE;
    u64 cg = bpf_get_current_cgroup_id();
    int admitted = admit(cg, want + offsetof(struct write_ev, data));
    if (!admitted)
        return 0;  // refused before any copy: a flood costs its writer little
    struct write_ev *e = start_write(&st, ret);
    if (!e)
        return 0;
    if (admitted == 2)
        e->h.flags |= WF_AFTER_LOSS;
    u32 len = 0;
    if (st.shape == W_BUF) {
        len = want;
        u64 n64 = want;
        opaque(n64);
        n64 &= 2 * LOGSHIP_CAPTURE - 1;
        if (bpf_probe_read_user(e->data, n64, (void *)st.ptr) != 0) {
            count_drop(DROP_READ);
            mark_loss(cg);
            return 0;
        }
    } else if (st.shape == W_IOV) {
        len = copy_iov(e, (const struct uiovec *)st.ptr, st.count, want);
    } else if (st.shape == W_MSG) {
        int syslog = 0;
        len = copy_msg(e, (void *)st.ptr, want, &syslog);
        if (syslog)
            e->h.flags |= WF_SYSLOG_ADDR;
    }
    submit_write(e, len, ret);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_write) { return stash_write(args->fd, W_BUF, args->buf, args->count, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_write) { return finish_write(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_pwrite64) { return stash_write(args->fd, W_BUF, args->buf, args->count, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pwrite64) { return finish_write(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_writev) { return stash_write(args->fd, W_IOV, args->vec, args->vlen, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_writev) { return finish_write(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_pwritev) { return stash_write(args->fd, W_IOV, args->vec, args->vlen, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pwritev) { return finish_write(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_sendto) {
    return stash_write(args->fd, W_BUF, args->buff, args->len, is_dev_log(args->addr));
}
TRACEPOINT_PROBE(syscalls, sys_exit_sendto) { return finish_write(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_sendmsg) {
    // The msghdr's name is checked at exit (copy_msg); an unconnected socket sending to
    // /dev/log has no fd state, so it is stashed when its msg_name says /dev/log.
    int syslog = 0;
    if (logship_should_trace()) {
        u64 name = 0;
        if (bpf_probe_read_user(&name, sizeof(name), args->msg) == 0 && name)
            syslog = is_dev_log((void *)name);
    }
    return stash_write(args->fd, W_MSG, args->msg, 0, syslog);
}
TRACEPOINT_PROBE(syscalls, sys_exit_sendmsg) { return finish_write(args->ret); }

// sendmmsg: ret is the number of messages sent; each becomes one event (first few only).
TRACEPOINT_PROBE(syscalls, sys_enter_sendmmsg) { return stash_write(args->fd, W_MMSG, args->mmsg, args->vlen, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_sendmmsg) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash st;
    if (!stash_take(id, &st))
        return 0;
    s64 sent = args->ret;
#pragma unroll
    for (int i = 0; i < LOGSHIP_MAX_MMSG; i++) {
        if (i >= sent)
            break;
        // struct mmsghdr { struct user_msghdr msg_hdr (56 bytes); unsigned int msg_len; } (64 bytes)
        const char *m = (const char *)st.ptr + i * 64;
        u32 msg_len = 0;
        if (bpf_probe_read_user(&msg_len, sizeof(msg_len), m + 56) != 0 || msg_len == 0)
            continue;
        u32 want = msg_len < LOGSHIP_CAPTURE ? msg_len : LOGSHIP_CAPTURE;
        int admitted = admit(bpf_get_current_cgroup_id(), want + offsetof(struct write_ev, data));
        if (!admitted)
            continue;
        struct write_ev *e = start_write(&st, msg_len);
        if (!e)
            return 0;
        if (admitted == 2)
            e->h.flags |= WF_AFTER_LOSS;
        int syslog = 0;
        u32 len = copy_msg(e, m, want, &syslog);
        if (syslog)
            e->h.flags |= WF_SYSLOG_ADDR;
        else if (st.fdval == 0)
            continue;  // neither a known fd nor addressed to /dev/log
        submit_write(e, len, msg_len);
    }
    return 0;
}

// ---- fd table events ------------------------------------------------------------------

static __always_inline int stash_open(const char *filename, s64 dirfd, s64 flags) {
    if (!logship_should_trace())
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    struct stash s = {};
    s.ptr = (u64)filename;
    s.count = (u64)dirfd;
    s.kind = EV_OPEN;
    s.arg2 = flags;
    stash_put(id, &s);
    return 0;
}

static __always_inline int finish_open(s64 ret) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash st;
    if (!stash_take(id, &st))
        return 0;
    if (ret < 0 || st.kind != EV_OPEN)
        return 0;
    int zero = 0;
    struct path_ev *e = path_scratch.lookup(&zero);
    if (!e)
        return 0;
    fill_hdr(&e->h, EV_OPEN, ret);
    // A new file is a candidate until user space has matched its path.
    e->h.fdval = ((u32)(e->h.ktime >> 4) << 8) | FD_SEND;
    fd_mark(ret, e->h.fdval);
    e->h.arg1 = (s64)st.count;
    e->h.arg2 = st.arg2;
    e->path[0] = 0;
    bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)st.ptr);
    if (events.ringbuf_output(e, sizeof(*e), RB_FLAGS) < 0)
        count_drop(DROP_RING_META);
    return 0;
}

// A new cgroup v2 directory (root 0: the unified hierarchy), by id and path, whoever made
// it: a job that exits at once is gone, directory and all, before user space can stat it
// (a busy machine reports it seconds later); its id is only known from here.
TRACEPOINT_PROBE(cgroup, cgroup_mkdir) {
    if (args->root != 0)
        return 0;
    int zero = 0;
    struct path_ev *e = path_scratch.lookup(&zero);
    if (!e)
        return 0;
    fill_hdr(&e->h, EV_CGROUP, 0);
    e->h.arg1 = (s64)args->id;
    e->h.arg2 = args->level;
    e->path[0] = 0;
    TP_DATA_LOC_READ_STR(e->path, path, sizeof(e->path));
    if (events.ringbuf_output(e, sizeof(*e), RB_FLAGS) < 0)
        count_drop(DROP_RING_META);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_openat) { return stash_open(args->filename, (s32)args->dfd, args->flags); }
TRACEPOINT_PROBE(syscalls, sys_exit_openat) { return finish_open(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_openat2) {
    // struct open_how { u64 flags; u64 mode; u64 resolve; } is ABI.
    u64 flags = 0;
    bpf_probe_read_user(&flags, sizeof(flags), args->how);
    return stash_open(args->filename, (s32)args->dfd, flags);
}
TRACEPOINT_PROBE(syscalls, sys_exit_openat2) { return finish_open(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_creat) { return stash_open(args->pathname, AT_FDCWD_, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_creat) { return finish_open(args->ret); }

static __always_inline int stash_dup(u32 oldfd, s64 flags) {
    if (!logship_should_trace())
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    struct stash s = {};
    s.fd = oldfd;
    s.kind = EV_DUP;
    s.arg2 = flags;
    stash_put(id, &s);
    return 0;
}

static __always_inline int finish_dup(s64 ret) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash st;
    if (!stash_take(id, &st))
        return 0;
    if (ret < 0 || st.kind != EV_DUP)
        return 0;
    // The value is in the event: user space clears an fd (close_range, exec) only while
    // the kernel still has the value it knows, never a newer open's.
    u32 v = fd_lookup(id >> 32, st.fd, TF_FORKED);
    if ((s64)st.fd != ret)
        fd_mark(ret, v);
    emit_meta(EV_DUP, ret, st.fd, st.arg2, v);
    return 0;
}

#define O_CLOEXEC_ 02000000
#define F_DUPFD_ 0
#define F_DUPFD_CLOEXEC_ 1030

TRACEPOINT_PROBE(syscalls, sys_enter_dup) { return stash_dup(args->fildes, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup) { return finish_dup(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_dup2) { return stash_dup(args->oldfd, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup2) { return finish_dup(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_dup3) { return stash_dup(args->oldfd, args->flags); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup3) { return finish_dup(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_fcntl) {
    if (args->cmd == F_DUPFD_)
        return stash_dup(args->fd, 0);
    if (args->cmd == F_DUPFD_CLOEXEC_)
        return stash_dup(args->fd, O_CLOEXEC_);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_exit_fcntl) { return finish_dup(args->ret); }

TRACEPOINT_PROBE(syscalls, sys_enter_close) {
    if (!logship_should_trace())
        return 0;
    fd_mark(args->fd, 0);
    emit_meta(EV_CLOSE, args->fd, args->fd, 0, 0);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_enter_close_range) {
    if (!logship_should_trace())
        return 0;
    // The kernel map entries of the range are removed by user space (it knows the fds).
    emit_meta(EV_CLOSE, args->fd, args->max_fd, args->flags, 0);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_socket) {
    if (!logship_should_trace())
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    struct stash s = {};
    s.kind = EV_SOCKET;
    s.count = args->family;
    s.arg2 = args->type;
    stash_put(id, &s);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_exit_socket) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash st;
    if (!stash_take(id, &st))
        return 0;
    if (args->ret < 0 || st.kind != EV_SOCKET)
        return 0;
    fd_mark(args->ret, 0);  // a socket is no log file, whatever that number was before
    emit_meta(EV_SOCKET, args->ret, st.count, st.arg2, 0);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_connect) {
    if (!logship_should_trace())
        return 0;
    // A generation as an open's (see fdval): a socket reconnected at a reused fd is new.
    u32 v = is_dev_log(args->uservaddr) ? ((u32)(bpf_ktime_get_ns() >> 4) << 8) | FD_SYSLOG : 0;
    fd_mark(args->fd, v);
    int zero = 0;
    struct path_ev *e = path_scratch.lookup(&zero);
    if (!e)
        return 0;
    fill_hdr(&e->h, EV_CONNECT, args->fd);
    e->h.fdval = v;
    e->h.arg2 = args->addrlen;
    // A fixed-size read (the verifier wants constant bounds); the tail past addrlen is
    // ignored by user space. A short sockaddr near the end of a page falls back to 16 bytes.
    __builtin_memset(e->path, 0, LOGSHIP_ADDR);
    if (bpf_probe_read_user(e->path, LOGSHIP_ADDR, args->uservaddr) != 0)
        bpf_probe_read_user(e->path, 16, args->uservaddr);
    if (events.ringbuf_output(e, sizeof(*e), RB_FLAGS) < 0)
        count_drop(DROP_RING_META);
    return 0;
}

// Processes: a child inherits its parent's decision (same cgroup) and may fall back on
// its fds (fork_parent); an exec is decided again (runc's init joins the container's cgroup
// before it execs the container's command); an exit clears the pid's entries.
TRACEPOINT_PROBE(sched, sched_process_fork) {
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    u32 child = args->child_pid;
    u32 *cv = tgid_filter.lookup(&child);
    if (!(logship_flags(parent) & TF_TRACED)) {
        if (cv && *cv)
            *cv = 0;  // (a thread's id left by an exec that took over its leader's pid)
        return 0;
    }
    int z = 0;
    u32 *g = filter_gen.lookup(&z);
    if (cv)
        *cv = (((g ? *g : 0) + 1) << 2) | TF_TRACED | TF_FORKED;
    fork_parent.update(&child, &parent);
    emit_meta(EV_FORK, -1, child, 0, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    u32 *v = tgid_filter.lookup(&tgid);
    if (v)
        *v &= TF_FORKED;  // decided again below
    if (!logship_should_trace())
        return 0;
    emit_meta(EV_EXEC, -1, 0, 0, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    if (logship_flags(tgid) & TF_TRACED) {
        fork_parent.delete(&tid);
        stash_map.delete(&id);
        emit_meta(EV_EXIT, -1, args->group_dead, 0, 0);
    }
    u32 *p = pending.lookup(&tid);
    if (p && *p)
        *p = 0;
    if (tid != tgid) {
        u32 *tv = tgid_filter.lookup(&tid);  // set at the thread's clone
        if (tv && *tv)
            *tv = 0;
    }
    u32 *v = tgid_filter.lookup(&tgid);
    if (args->group_dead && v && *v)
        *v = 0;
    return 0;
}
