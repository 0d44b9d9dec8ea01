// Stand-alone host of syscall_rings.c for tests and the benchmark: the declarations
// probe.c provides in production (the shipped-cgroup filter and the self exclusion).
// Load it with shipper.snapshots.ring.inline_rings(): bcc attaches only functions of
// its main file, so the include below is replaced by the file's text.
#ifndef LOGSHIP_SELF_TGID
#define LOGSHIP_SELF_TGID 0
#endif

BPF_HASH(shipped_cgroups, u64, u8, 4096);

static __always_inline int logship_should_trace(void) {
    if ((bpf_get_current_pid_tgid() >> 32) == LOGSHIP_SELF_TGID)
        return 0;
    u64 cg = bpf_get_current_cgroup_id();
    return shipped_cgroups.lookup(&cg) != 0;
}

#include "syscall_rings.c"
