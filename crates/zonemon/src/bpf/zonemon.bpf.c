// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * zonemon's kernel side: watches zone (PID namespace) inits being forked,
 * exec'ing, exiting and being freed, and reports each as a `struct zm_event`
 * through the `events` ring buffer. Everything else the host does costs one
 * cheap test per fork/exec/exit and nothing more.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "zonemon.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Ring buffer size in bytes; set by userspace before load (power of two, multiple of the page size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Who a dying zone init is: task pointers are reused, (tgid, start time) is not. */
struct zm_dying {
	__u32 tgid;
	__u32 _pad;
	__u64 start_ns;
};

/*
 * Zone inits whose thread group has exited but which are not yet freed,
 * keyed by task pointer: the free of one of these is the zone going "down".
 * The value says which zone: should an entry outlive its task (a free the
 * kernel side did not see), the next zone init exiting or task freed at that
 * address proves the zone gone all the same, and the record names the zone,
 * not that task.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct zm_dying);
} dying SEC(".maps");

/* Records the kernel side could not deliver (ring buffer full). */
__u64 dropped = 0;
/* Dying inits that did not fit in `dying` (their "down" will be missing). */
__u64 dying_overflow = 0;
/*
 * Entries in `dying`, so that the free of every other task on the host
 * (nearly all of them) costs one load instead of a hash lookup while no
 * zone init is dying. Never below the true count: a free seen after its
 * entry was counted finds it.
 */
__s64 dying_count = 0;

/* Never written: here so that libbpf-cargo generates the Rust types of the record and its kinds. */
struct zm_event _zm_event_type = {};
enum zm_kind _zm_kind_type = 0;

/*
 * The depth of the task's PID namespace: 0 for every process of the host,
 * the one field to test first (two reads).
 */
static __always_inline unsigned int task_level(struct task_struct *task, struct pid **pid)
{
	*pid = BPF_CORE_READ(task, thread_pid);
	if (!*pid)
		return 0;
	return BPF_CORE_READ(*pid, level);
}

/*
 * The PID namespace of a task whose `pid` is at depth `level` > 0, if the
 * task is PID 1 there (a zone's init); else NULL.
 */
static __always_inline struct pid_namespace *init_pidns(struct pid *pid, unsigned int level)
{
	if (BPF_CORE_READ(pid, numbers[level].nr) != 1)
		return NULL;
	return BPF_CORE_READ(pid, numbers[level].ns);
}

static __always_inline __u64 ns_id_of(struct pid_namespace *ns)
{
	if (!ns || !bpf_core_field_exists(ns->ns.ns_id))
		return 0;
	return BPF_CORE_READ(ns, ns.ns_id);
}

/*
 * Fills and submits one record about `init` (a zone's init, or any thread of
 * its group), whose PID namespace is `ns` at depth `level`.
 */
static __always_inline void emit(__u32 kind, struct task_struct *init, struct pid_namespace *ns,
				 unsigned int level, __u32 creator_pid, __s32 exit_status,
				 __u32 victim_pid)
{
	struct zm_event *e;
	struct pid_namespace *parent;
	struct task_struct *leader, *reaper;
	struct uts_namespace *uts;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return;
	}
	leader = BPF_CORE_READ(init, group_leader);
	parent = BPF_CORE_READ(ns, parent);

	e->ts_ns = bpf_ktime_get_boot_ns();
	e->start_ns = BPF_CORE_READ(leader, start_boottime);
	e->ns_id = ns_id_of(ns);
	e->kind = kind;
	e->pidns_inum = BPF_CORE_READ(ns, ns.inum);
	e->level = level;
	e->init_pid = BPF_CORE_READ(init, tgid);
	e->creator_pid = creator_pid;
	e->exit_status = exit_status;
	e->victim_pid = victim_pid;
	e->parent_pidns_inum = BPF_CORE_READ(parent, ns.inum);
	e->parent_ns_id = level > 1 ? ns_id_of(parent) : 0;
	reaper = level > 1 ? BPF_CORE_READ(parent, child_reaper) : NULL;
	e->parent_init_pid = reaper ? BPF_CORE_READ(reaper, tgid) : 0;
	BPF_CORE_READ_STR_INTO(&e->comm, init, comm);
	uts = BPF_CORE_READ(init, nsproxy, uts_ns);
	if (uts) {
		e->utsns_inum = BPF_CORE_READ(uts, ns.inum);
		BPF_CORE_READ_STR_INTO(&e->nodename, uts, name.nodename);
	} else {
		e->utsns_inum = 0;
		e->nodename[0] = 0;
	}
	__builtin_memset(e->_pad2, 0, sizeof(e->_pad2));
	bpf_ringbuf_submit(e, 0);
}

/*
 * Submits the record that the zone whose init was `who` is gone: its init's
 * task was freed. Its thread_pid is detached by then, so only the identity
 * is reported; userspace knows the rest.
 */
static __always_inline void emit_gone(const struct zm_dying *who)
{
	struct zm_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->start_ns = who->start_ns;
	e->kind = ZM_KIND_INIT_FREE;
	e->init_pid = who->tgid;
	bpf_ringbuf_submit(e, 0);
}

/* sched_process_fork(parent, child): a child that is PID 1 at its own level > 0 is a new zone's init. */
SEC("raw_tracepoint/sched_process_fork")
int zm_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	level = task_level(child, &pid);
	if (level == 0)
		return 0;
	ns = init_pidns(pid, level);
	if (!ns)
		return 0;
	emit(ZM_KIND_INIT_FORK, child, ns, level, BPF_CORE_READ(parent, tgid), 0, 0);
	return 0;
}

/* sched_process_exec(task, old_pid, bprm): a zone's init ran a new program. */
SEC("raw_tracepoint/sched_process_exec")
int zm_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	level = task_level(task, &pid);
	if (level == 0)
		return 0;
	ns = init_pidns(pid, level);
	if (!ns)
		return 0;
	emit(ZM_KIND_INIT_EXEC, task, ns, level, 0, 0, 0);
	return 0;
}

/*
 * sched_process_exit(task[, group_dead]): the last thread of a zone's init
 * exited. `signal->live` is already decremented here, so it is 0 exactly
 * for the last thread of the group, whichever thread that is.
 */
SEC("raw_tracepoint/sched_process_exit")
int zm_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct task_struct *leader;
	struct signal_struct *sig;
	struct pid_namespace *ns;
	unsigned int level;
	struct zm_dying who = {}, gone, *stale;
	struct pid *pid;
	__s32 status;
	__u64 key;

	/* The threads of a group share its PID namespace: a host process is done with here. */
	level = task_level(task, &pid);
	if (level == 0)
		return 0;
	sig = BPF_CORE_READ(task, signal);
	if (BPF_CORE_READ(sig, live.counter) != 0)
		return 0;
	leader = BPF_CORE_READ(task, group_leader);
	if (leader != task) {
		level = task_level(leader, &pid);
		if (level == 0)
			return 0;
	}
	ns = init_pidns(pid, level);
	if (!ns)
		return 0;
	/* The status wait() will see: the group's when the group was killed or exit_group'd, else the leader's. */
	if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
		status = BPF_CORE_READ(sig, group_exit_code);
	else
		status = BPF_CORE_READ(leader, exit_code);
	emit(ZM_KIND_INIT_EXIT, task, ns, level, 0, status, 0);
	key = (__u64)leader;
	who.tgid = BPF_CORE_READ(leader, tgid);
	who.start_ns = BPF_CORE_READ(leader, start_boottime);
	/*
	 * Another zone's init still listed at this task's address was freed
	 * without its free being seen here (it happens, rarely, under heavy
	 * churn): the address being in use again proves that zone gone. Say so
	 * now, before its entry is overwritten.
	 */
	stale = bpf_map_lookup_elem(&dying, &key);
	if (stale) {
		if (stale->tgid != who.tgid || stale->start_ns != who.start_ns) {
			gone = *stale;
			emit_gone(&gone);
		}
		/* Replaces the entry: the count stays. */
		if (bpf_map_update_elem(&dying, &key, &who, BPF_EXIST))
			__sync_fetch_and_add(&dying_overflow, 1);
		return 0;
	}
	/* Counted first, so that a concurrent free never sees an entry the count misses. */
	__sync_fetch_and_add(&dying_count, 1);
	if (bpf_map_update_elem(&dying, &key, &who, BPF_NOEXIST)) {
		__sync_fetch_and_add(&dying_count, -1);
		__sync_fetch_and_add(&dying_overflow, 1);
	}
	return 0;
}

/* sched_process_free(task): a dying zone init's task is freed; the zone is gone. */
SEC("raw_tracepoint/sched_process_free")
int zm_free(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct zm_dying *found, who;
	__u64 key = (__u64)task;

	/* No zone init is dying (nearly always): no lookup. */
	if (dying_count <= 0)
		return 0;
	found = bpf_map_lookup_elem(&dying, &key);
	if (!found)
		return 0;
	who = *found;
	if (bpf_map_delete_elem(&dying, &key) == 0)
		__sync_fetch_and_add(&dying_count, -1);
	emit_gone(&who);
	return 0;
}

/*
 * mark_victim(task, uid): the OOM killer chose `task` (for a whole cgroup
 * killed as a group, every member in turn). A victim inside a zone is
 * reported against the innermost zone it is in, whose init is the
 * namespace's child reaper; a host process costs one test.
 */
SEC("raw_tracepoint/mark_victim")
int zm_oom(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct task_struct *init;
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	level = task_level(task, &pid);
	if (level == 0)
		return 0;
	ns = BPF_CORE_READ(pid, numbers[level].ns);
	init = ns ? BPF_CORE_READ(ns, child_reaper) : NULL;
	if (!init)
		return 0;
	emit(ZM_KIND_OOM_VICTIM, init, ns, level, 0, 0, BPF_CORE_READ(task, tgid));
	return 0;
}
