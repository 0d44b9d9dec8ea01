// Test probe: reports write() calls whose buffer starts with "LOGSHIP-MARK",
// with the writer's cgroup id. Tracepoint args and helpers only.
struct event {
    u64 cgroup_id;
    u32 tgid;
    u32 count;
    char comm[16];
    char data[48];
};

BPF_RINGBUF_OUTPUT(events, 8);

TRACEPOINT_PROBE(syscalls, sys_enter_write) {
    char head[12];
    if (bpf_probe_read_user(head, sizeof(head), args->buf) != 0)
        return 0;
    if (head[0] != 'L' || head[1] != 'O' || head[2] != 'G' || head[3] != 'S' || head[7] != '-' || head[8] != 'M')
        return 0;
    struct event *e = events.ringbuf_reserve(sizeof(struct event));
    if (!e)
        return 0;
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->tgid = bpf_get_current_pid_tgid() >> 32;
    e->count = args->count;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_probe_read_user(&e->data, sizeof(e->data), args->buf);
    events.ringbuf_submit(e, 0);
    return 0;
}
