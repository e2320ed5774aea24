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

/*
 * Containers that share the host's PID namespace have no init of their own
 * namespace: a host-PID zone is a process that execs in a mount namespace
 * other than the host's, with a root directory other than the host's (the
 * runtime pivoted into the container's filesystem), whose parent is not in
 * that mount namespace, the first to do so there. Its exit is the zone's shutdown. The zone's
 * processes are counted (its init, what they fork, what execs in its mount
 * namespace, as `docker exec` does), and the zone is down when the last of
 * them is freed.
 *
 * The host's mount namespace and root directory, as PID 1 has them, are set
 * by userspace before load; host_mntns == 0 watches no such zone.
 */
const volatile __u32 host_mntns = 0;
/* Device (the kernel's encoding) and inode of the host's root directory. */
const volatile __u32 host_root_dev = 0;
const volatile __u64 host_root_ino = 0;

/* A live host-PID zone. */
struct zm_host_zone {
	/* Its init's start (CLOCK_BOOTTIME ns; /proc's precision when found there): with `init_tgid`, who the zone is. */
	__u64 init_start_ns;
	/* Its init's host PID. */
	__u32 init_tgid;
	/* Its processes that have not exited yet (the init included, until it exits). */
	__u32 members;
};

/* Live host-PID zones, by the inode number of their mount namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct zm_host_zone);
} host_zones SEC(".maps");

/* A process counted in a host-PID zone's `members`. */
struct zm_host_member {
	/* When it was created (CLOCK_BOOTTIME ns); 0 when found in /proc (then its PID alone says who it is). */
	__u64 start_ns;
	/* The zone's key in `host_zones`. */
	__u32 mntns_inum;
	__u32 _pad;
};

/* The processes of live host-PID zones, by host PID. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct zm_host_member);
} host_members SEC(".maps");

/*
 * Entries in `host_zones` (never below the true count), so that the fork
 * and exit of a host process cost one load while no host-PID zone lives.
 */
__s64 host_zone_count = 0;
/* Host-PID zones or processes that did not fit in the maps (counted as loss). */
__u64 host_overflow = 0;

/*
 * The placeholder of the address of the set of namespaces the kernel
 * started with, here so that the loader reads it from the object rather
 * than repeating it (see ZM_BOOT_NSPROXY_MARK).
 */
const volatile __u64 boot_nsproxy_mark = ZM_BOOT_NSPROXY_MARK;

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

/*
 * Where an INIT_FORK record is put together before it is copied into
 * `events`: its length depends on the creator's command line, and a record
 * reserved in the ring has a length fixed when the program is loaded.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_fork_event);
} fork_scratch SEC(".maps");

/* Never written: here so that libbpf-cargo generates the Rust types of the records and their kinds. */
struct zm_event _zm_event_type = {};
struct zm_fork_event _zm_fork_event_type = {};
enum zm_kind _zm_kind_type = 0;
struct zm_seed _zm_seed_type = {};
enum zm_seed_op _zm_seed_op_type = 0;

/*
 * The address of the set of namespaces the kernel started with (the
 * kernel's `init_nsproxy`, which the first task holds), when its mount
 * namespace is the host's; else 0. An immediate, which the loader puts in
 * place of ZM_BOOT_NSPROXY_MARK: a global variable would cost a cache miss
 * on nearly every fork, exec and exit on the host, measured at 50–100 ns each.
 * Only the programs' own bodies may hold it: the loader sets the instructions
 * of each program before libbpf appends the functions it calls (the
 * `__noinline` ones below), which keep the placeholder.
 */
static __always_inline __u64 boot_nsproxy(void)
{
	__u64 addr;

	asm volatile("%[addr] = %[mark] ll" : [addr] "=r"(addr) : [mark] "i"(ZM_BOOT_NSPROXY_MARK));
	return addr;
}

/*
 * Whether `task` holds the namespaces the kernel started with: a plain host
 * process.
 *
 * Only fork without any CLONE_NEW* flag shares a set of namespaces (unshare
 * and setns always make a new one), so the task's every ancestor since boot
 * stayed in the initial PID namespace (depth 0) and in the host's mount
 * namespace, and no process of a host-PID zone (which are in another mount
 * namespace, or entered it) holds it. One load of `task->nsproxy`, from the
 * task itself, rules out such a task before its PID's depth, in another
 * cache line, is read.
 */
static __always_inline int boot_namespaces(struct task_struct *task)
{
	__u64 boot = boot_nsproxy();

	return boot && (__u64)task->nsproxy == boot;
}

/*
 * The depth of the task's PID namespace: 0 for every process of the host,
 * the field to test after boot_namespaces() (two reads).
 */
static __always_inline unsigned int task_level(struct task_struct *task, struct pid **pid)
{
	*pid = task->thread_pid;
	if (!*pid)
		return 0;
	return (*pid)->level;
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

/* Room for a record of `size` bytes in `events`, or NULL (counted in `dropped`) when it is full. */
static __always_inline void *reserve(__u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);

	if (!r)
		__sync_fetch_and_add(&dropped, 1);
	return r;
}

/*
 * Fills record `e` about `init` (a zone's init, or any thread of its group),
 * whose PID namespace is `ns` at depth `level`.
 */
static __always_inline void fill(struct zm_event *e, __u32 kind, struct task_struct *init,
				 struct pid_namespace *ns, unsigned int level, __u32 creator_pid,
				 __s32 exit_status, __u32 victim_pid)
{
	struct pid_namespace *parent;
	struct task_struct *leader, *reaper;
	struct uts_namespace *uts;

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
}

/* Fills and submits one record about `init` (see fill()). */
static __always_inline void emit(__u32 kind, struct task_struct *init, struct pid_namespace *ns,
				 unsigned int level, __u32 creator_pid, __s32 exit_status,
				 __u32 victim_pid)
{
	struct zm_event *e;

	e = reserve(sizeof(*e));
	if (!e)
		return;
	fill(e, kind, init, ns, level, creator_pid, exit_status, victim_pid);
	bpf_ringbuf_submit(e, 0);
}

/* Writes who `task` (a thread of it; NULL for none) is into `f`: its tgid and its leader's comm. */
static __always_inline void forebear(struct zm_forebear *f, struct task_struct *task)
{
	__builtin_memset(f, 0, sizeof(*f));
	if (!task)
		return;
	f->pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&f->comm, task, group_leader, comm);
}

/*
 * Copies the command line of `parent`, the task forking a zone's init, into
 * `f` (see struct zm_fork_event), so that the name resolvers need not read
 * /proc/<creator>/cmdline: an open and a read through the creator's memory,
 * on the event path, while the creator is busy making the zone. The copy is
 * of the task's own memory, which sched_process_fork runs in (`parent` is
 * the current task); it is left out (length 0) when anything is unusual.
 */
static __always_inline void creator_cmdline(struct zm_fork_event *f, struct task_struct *parent)
{
	struct mm_struct *mm;
	unsigned long start, len;

	f->creator_cmdline_len = 0;
	__builtin_memset(f->_pad3, 0, sizeof(f->_pad3));
	if ((void *)parent != (void *)bpf_get_current_task_btf())
		return;
	mm = BPF_CORE_READ(parent, mm);
	if (!mm)
		return; /* a kernel thread */
	start = BPF_CORE_READ(mm, arg_start);
	len = BPF_CORE_READ(mm, arg_end) - start;
	if (len == 0 || len > ZM_CMDLINE_LEN)
		return;
	if (bpf_probe_read_user(f->creator_cmdline, len, (void *)start))
		return;
	/* Not NUL-terminated: the title was rewritten past its end, and /proc reads on. */
	if (f->creator_cmdline[(len - 1) & (ZM_CMDLINE_LEN - 1)] != 0)
		return;
	f->creator_cmdline_len = len;
}

/*
 * Submits the INIT_FORK record of `child`, a new zone's init that `parent`
 * forked, with the lineage above it and the creator's command line (see
 * struct zm_fork_event).
 */
static __always_inline void emit_fork(struct task_struct *parent, struct task_struct *child,
				      struct pid_namespace *ns, unsigned int level)
{
	struct zm_fork_event *f;
	struct task_struct *up;
	__u32 zero = 0;
	__u64 size;
	int i;

	f = bpf_map_lookup_elem(&fork_scratch, &zero);
	if (!f)
		return;
	fill(&f->event, ZM_KIND_INIT_FORK, child, ns, level, BPF_CORE_READ(parent, tgid), 0, 0);
	forebear(&f->lineage[0], parent);
	up = BPF_CORE_READ(child, real_parent);
#pragma unroll
	for (i = 1; i < ZM_LINEAGE_LEN; i++) {
		forebear(&f->lineage[i], up);
		up = up ? BPF_CORE_READ(up, real_parent) : NULL;
	}
	creator_cmdline(f, parent);
	/* Only the command line's own bytes are sent: the ring holds as many zones as before it. */
	size = __builtin_offsetof(struct zm_fork_event, creator_cmdline) + f->creator_cmdline_len;
	if (size > sizeof(*f))
		size = sizeof(*f);
	if (bpf_ringbuf_output(&events, f, size, 0))
		__sync_fetch_and_add(&dropped, 1);
}

/*
 * Submits a record of `kind` about the zone whose init is known only by its
 * identity (`tgid`, `start_ns`); userspace knows the rest. `pidns_inum` and
 * `victim_pid` may be 0.
 */
static __always_inline void emit_known(__u32 kind, __u32 tgid, __u64 start_ns, __u32 pidns_inum,
				       __u32 victim_pid)
{
	struct zm_event *e;

	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->start_ns = start_ns;
	e->kind = kind;
	e->init_pid = tgid;
	e->pidns_inum = pidns_inum;
	e->victim_pid = victim_pid;
	bpf_ringbuf_submit(e, 0);
}

/*
 * Submits the record that the zone whose init was `who` is gone: its init's
 * task was freed. Its thread_pid is detached by then, so only the identity
 * is reported.
 */
static __always_inline void emit_gone(const struct zm_dying *who)
{
	emit_known(ZM_KIND_INIT_FREE, who->tgid, who->start_ns, 0, 0);
}

/*
 * Lists the zone init `who` as dying, keyed by `key` (the address of the
 * task whose free is the zone's down).
 */
static __always_inline void add_dying(__u64 key, const struct zm_dying *who)
{
	struct zm_dying gone, *stale;

	/*
	 * Another zone's init still listed at this task's address was freed
	 * without its free being seen here (it happens, rarely, under heavy
	 * churn): the address being in use again proves that zone gone. Say so
	 * now, before its entry is overwritten.
	 */
	stale = bpf_map_lookup_elem(&dying, &key);
	if (stale) {
		if (stale->tgid != who->tgid || stale->start_ns != who->start_ns) {
			gone = *stale;
			emit_gone(&gone);
		}
		/* Replaces the entry: the count stays. */
		if (bpf_map_update_elem(&dying, &key, who, BPF_EXIST))
			__sync_fetch_and_add(&dying_overflow, 1);
		return;
	}
	/* Counted first, so that a concurrent free never sees an entry the count misses. */
	__sync_fetch_and_add(&dying_count, 1);
	if (bpf_map_update_elem(&dying, &key, who, BPF_NOEXIST)) {
		__sync_fetch_and_add(&dying_count, -1);
		__sync_fetch_and_add(&dying_overflow, 1);
	}
}

/*
 * Counts process `tgid` (started at `start_ns`, 0 if unknown) in `zone`
 * (at `mntns`); 1 if it was added, 0 if it was counted already or does not fit.
 */
static __always_inline int host_join(struct zm_host_zone *zone, __u32 mntns, __u32 tgid,
				     __u64 start_ns)
{
	struct zm_host_member m = { .start_ns = start_ns, .mntns_inum = mntns };
	long err;

	/* Counted first: whoever takes the entry out finds it counted. */
	__sync_fetch_and_add(&zone->members, 1);
	err = bpf_map_update_elem(&host_members, &tgid, &m, BPF_NOEXIST);
	if (err) {
		__sync_fetch_and_add(&zone->members, -1);
		if (err != -17 /* EEXIST: counted already */)
			__sync_fetch_and_add(&host_overflow, 1);
		return 0;
	}
	return 1;
}

/*
 * A process of the zone at `mntns` has left it (its entry in `host_members`
 * is already taken out, by whoever took it): when it was the last, the zone
 * is forgotten and goes down when the task at `task_key` is freed, or at
 * once when there is no such task (0).
 */
static __always_inline void host_leave(__u32 mntns, __u64 task_key)
{
	struct zm_host_zone *zone;
	struct zm_dying who = {};

	zone = bpf_map_lookup_elem(&host_zones, &mntns);
	if (!zone || __sync_fetch_and_add(&zone->members, -1) != 1)
		return;
	who.tgid = zone->init_tgid;
	who.start_ns = zone->init_start_ns;
	if (bpf_map_delete_elem(&host_zones, &mntns) == 0)
		__sync_fetch_and_add(&host_zone_count, -1);
	if (task_key)
		add_dying(task_key, &who);
	else
		emit_gone(&who);
}

/*
 * Takes the process `tgid` out of its zone if `m` (its entry) is still
 * there to take: 1 if this call did, so that a process leaves once.
 */
static __always_inline int host_take(__u32 tgid, const struct zm_host_member *m, __u64 task_key)
{
	__u32 mntns = m->mntns_inum;

	if (bpf_map_delete_elem(&host_members, &tgid))
		return 0;
	host_leave(mntns, task_key);
	return 1;
}

/*
 * The entry of host PID `tgid`, if it is the process that started at
 * `start_ns`. An entry of an earlier process under the same PID (its exit
 * was not seen) is taken out on the way: that process has left.
 */
static __always_inline struct zm_host_member *host_member(__u32 tgid, __u64 start_ns)
{
	struct zm_host_member *m, stale;

	m = bpf_map_lookup_elem(&host_members, &tgid);
	if (!m || m->start_ns == 0 || m->start_ns == start_ns)
		return m;
	stale = *m;
	host_take(tgid, &stale, 0);
	return NULL;
}

/*
 * Creates the host-PID zone at `mntns` whose init is `tgid` (started at
 * `init_start_ns`), with the init as its first process; if the zone exists
 * already (it was created meanwhile), the process joins it. 1 if the zone
 * was created.
 */
static __always_inline int host_create(__u32 mntns, __u32 tgid, __u64 init_start_ns,
				       __u64 member_start_ns)
{
	struct zm_host_zone zone = { .init_start_ns = init_start_ns, .init_tgid = tgid, .members = 0 };
	struct zm_host_zone *known;
	long err;

	/* Counted first: a fork or exit never misses a listed zone. */
	__sync_fetch_and_add(&host_zone_count, 1);
	err = bpf_map_update_elem(&host_zones, &mntns, &zone, BPF_NOEXIST);
	if (err) {
		__sync_fetch_and_add(&host_zone_count, -1);
		known = err == -17 /* EEXIST */ ? bpf_map_lookup_elem(&host_zones, &mntns) : NULL;
		if (known)
			host_join(known, mntns, tgid, member_start_ns);
		else
			__sync_fetch_and_add(&host_overflow, 1);
		return 0;
	}
	known = bpf_map_lookup_elem(&host_zones, &mntns);
	if (known && host_join(known, mntns, tgid, member_start_ns))
		return 1;
	/* The init does not fit: no zone, rather than one whose down never comes. */
	if (bpf_map_delete_elem(&host_zones, &mntns) == 0)
		__sync_fetch_and_add(&host_zone_count, -1);
	__sync_fetch_and_add(&host_overflow, 1);
	return 0;
}

/*
 * A process of the host's PID namespace execs: if it is the first to do so
 * in a container's mount namespace, it is a host-PID zone's init, now
 * booted; in a known zone's namespace, it joins that zone (`docker exec`).
 * A process of the host costs three loads (its mount namespace is the host's).
 */
static __always_inline void host_exec(struct task_struct *task, struct pid *pid)
{
	struct zm_host_zone *zone;
	struct dentry *root;
	__u32 mntns, tgid;
	__u64 start;

	if (!host_mntns)
		return;
	mntns = task->nsproxy->mnt_ns->ns.inum;
	if (mntns == host_mntns || mntns == 0)
		return;
	tgid = BPF_CORE_READ(task, tgid);
	/* After the exec the task leads its thread group, with the leader's start time. */
	start = BPF_CORE_READ(task, group_leader, start_boottime);
	if (host_zone_count > 0) {
		/* A zone's process, wherever it is now, is not a zone of its own. */
		if (host_member(tgid, start))
			return;
		zone = bpf_map_lookup_elem(&host_zones, &mntns);
		if (zone) {
			host_join(zone, mntns, tgid, start);
			return;
		}
	}
	root = task->fs->root.dentry;
	if (root->d_inode->i_ino == host_root_ino && root->d_sb->s_dev == host_root_dev)
		return; /* a private mount namespace on the host's root: a sandboxed service */
	/*
	 * The runtime's process that entered the container (its parent is
	 * outside), as /proc scans tell it: not a child the container's init
	 * forked while the zone was not known yet (zonemon starting up), which
	 * is counted from /proc then.
	 */
	if (BPF_CORE_READ(task, real_parent, nsproxy, mnt_ns, ns.inum) == mntns)
		return;
	if (host_create(mntns, tgid, start, start))
		emit(ZM_KIND_INIT_EXEC, task, BPF_CORE_READ(pid, numbers[0].ns), 0, 0, 0, 0);
}

/*
 * The host-PID zone the process of `task` is counted in, if any, and the
 * zone's key (its mount namespace) in `*mntns`.
 */
static __always_inline struct zm_host_zone *host_zone_of(struct task_struct *task, __u32 *mntns)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct zm_host_member *m;

	m = host_member(BPF_CORE_READ(task, tgid), BPF_CORE_READ(leader, start_boottime));
	if (!m)
		return NULL;
	*mntns = m->mntns_inum;
	return bpf_map_lookup_elem(&host_zones, mntns);
}

/* A process of the host's PID namespace forked `child`: a child of a host-PID zone's process is one too. */
static __always_inline void host_fork(struct task_struct *parent, struct task_struct *child)
{
	struct zm_host_zone *zone;
	__u32 tgid, mntns = 0;

	tgid = BPF_CORE_READ(child, tgid);
	if (BPF_CORE_READ(child, pid) != tgid)
		return; /* a new thread */
	zone = host_zone_of(parent, &mntns);
	if (!zone)
		return;
	/* A stale entry under the child's PID (an exit not seen) goes first. */
	host_member(tgid, BPF_CORE_READ(child, start_boottime));
	host_join(zone, mntns, tgid, BPF_CORE_READ(child, start_boottime));
}

/*
 * The PID namespace whose init `task` is, at depth `*level` > 0; NULL when it
 * is no zone's init. Then `*level` is 0 for a process of the host's PID
 * namespace, with its struct pid in `*pid` (NULL if it has none). The
 * programs rule out plain host processes (boot_namespaces()) before they
 * ask: only their own bodies hold that test's immediate, which the loader
 * sets (libbpf appends the functions they call later, from the object).
 */
static __always_inline struct pid_namespace *init_of(struct task_struct *task,
						     unsigned int *level, struct pid **pid)
{
	*level = task_level(task, pid);
	return *level ? init_pidns(*pid, *level) : NULL;
}

/*
 * How the programs below are laid out: each tests what rules out nearly every
 * task on the host (a plain host process; no dying zone init) in its own small
 * body, and calls a function that is not inlined for the rest. The JIT then
 * keeps that test, the return and the program's exit together, in a cache
 * line or two: a program running once per fork, exec and exit finds its code
 * cold, and a return that jumps to the end of a large body costs another
 * cache miss.
 */

/* The rest of zm_fork, for a child that is no plain host process. */
static __noinline int seen_fork(struct task_struct *parent, struct task_struct *child)
{
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	ns = init_of(child, &level, &pid);
	if (ns)
		emit_fork(parent, child, ns, level);
	else if (pid && level == 0 && host_zone_count > 0)
		host_fork(parent, child); /* a host process: one load while no host-PID zone lives */
	return 0;
}

/* sched_process_fork(parent, child): a child that is PID 1 at its own level > 0 is a new zone's init. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(zm_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!boot_namespaces(child))
		seen_fork(parent, child);
	return 0;
}

/*
 * The rest of zm_exec, for a task that is no plain host process.
 *
 * A process execs past the point of no return: what it runs next is the new
 * program, or nothing (a failure from here on kills it). It is a zone's
 * init, whose first exec makes the zone booted, or a process of the host
 * (see host_exec()). The exec'ing thread need not lead its thread group yet:
 * the kernel makes it the leader next, under the leader's PID and start
 * time, so a thread of an init other than its first execs as the init.
 */
static __noinline int seen_exec(struct task_struct *task)
{
	struct task_struct *leader;
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	ns = init_of(task, &level, &pid);
	if (!ns && level > 0) {
		leader = task->group_leader;
		if (leader != task)
			ns = init_pidns(BPF_CORE_READ(leader, thread_pid), level);
	}
	if (ns)
		emit(ZM_KIND_INIT_EXEC, task, ns, level, 0, 0, 0);
	else if (pid && level == 0)
		host_exec(task, pid);
	return 0;
}

/*
 * sched_prepare_exec(task, bprm): the exec's point of no return (Linux
 * 6.10+), before the kernel ends the process's other threads and replaces
 * its memory: for a multi-threaded runtime's init (runc's is a Go program),
 * milliseconds before the new program is in place.
 */
SEC("tp_btf/sched_prepare_exec")
int BPF_PROG(zm_exec, struct task_struct *task)
{
	if (!boot_namespaces(task))
		seen_exec(task);
	return 0;
}

/* sched_process_exec(task, old_pid, bprm): the exec done; used instead of zm_exec on kernels before 6.10. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(zm_exec_done, struct task_struct *task)
{
	if (!boot_namespaces(task))
		seen_exec(task);
	return 0;
}

/*
 * cgroup_attach_task(dst_cgrp, path, task, threadgroup): `task` was moved to
 * another cgroup. When it is a zone's init, userspace must read its cgroups
 * again before it trusts them. Runs only when a task changes cgroups (a
 * container starting, systemd placing a service), never per fork or exec.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(zm_cgroup, struct cgroup *dst_cgrp, const char *path, struct task_struct *task)
{
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	if (boot_namespaces(task))
		return 0;
	ns = init_of(task, &level, &pid);
	if (ns)
		emit(ZM_KIND_INIT_CGROUP, task, ns, level, 0, 0, 0);
	return 0;
}

/*
 * Reports that the last thread of the zone init led by `leader` exited
 * (`task`, of the group whose signal_struct is `sig`; PID namespace `ns` at
 * depth `level`), with the status wait() will see: the group's when the
 * group was killed or exit_group'd, else the leader's.
 */
static __always_inline void emit_exit(struct task_struct *task, struct task_struct *leader,
				      struct signal_struct *sig, struct pid_namespace *ns,
				      unsigned int level)
{
	__s32 status;

	if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
		status = BPF_CORE_READ(sig, group_exit_code);
	else
		status = BPF_CORE_READ(leader, exit_code);
	emit(ZM_KIND_INIT_EXIT, task, ns, level, 0, status, 0);
}

/*
 * The last thread of the host process led by `leader` exited (`task`, of
 * the group whose signal_struct is `sig`, in PID namespace `ns`): if it was
 * a host-PID zone's process, it leaves the zone, and if it was the zone's
 * init, the zone shut down.
 */
static __always_inline void host_exit(struct task_struct *task, struct task_struct *leader,
				      struct signal_struct *sig, struct pid_namespace *ns)
{
	struct zm_host_member *found, m;
	struct zm_host_zone *zone;
	__u32 tgid;

	tgid = BPF_CORE_READ(leader, tgid);
	found = host_member(tgid, BPF_CORE_READ(leader, start_boottime));
	if (!found)
		return;
	m = *found;
	zone = bpf_map_lookup_elem(&host_zones, &m.mntns_inum);
	if (zone && zone->init_tgid == tgid) {
		emit_exit(task, leader, sig, ns, 0);
		/*
		 * The zone's down names the init as its shutdown did: with its exact
		 * start, also when it was found in /proc (to a clock tick).
		 */
		zone->init_start_ns = BPF_CORE_READ(leader, start_boottime);
	}
	host_take(tgid, &m, (__u64)leader);
}

/*
 * The rest of zm_exit, for a task that is no plain host process: the last
 * thread of a zone's init exited. `signal->live` is already decremented
 * here, so it is 0 exactly for the last thread of the group, whichever
 * thread that is.
 */
static __noinline int seen_exit(struct task_struct *task)
{
	struct task_struct *leader;
	struct signal_struct *sig;
	struct pid_namespace *ns;
	struct zm_dying who = {};
	unsigned int level;
	struct pid *pid;

	level = task_level(task, &pid);
	if (level == 0) {
		/* A host process: one load while no host-PID zone lives. */
		if (host_zone_count <= 0)
			return 0;
		sig = task->signal;
		if (sig->live.counter != 0)
			return 0;
		host_exit(task, task->group_leader, sig, BPF_CORE_READ(pid, numbers[0].ns));
		return 0;
	}
	sig = task->signal;
	if (sig->live.counter != 0)
		return 0;
	leader = task->group_leader;
	if (leader != task) {
		level = task_level(leader, &pid);
		if (level == 0)
			return 0;
	}
	ns = init_pidns(pid, level);
	if (!ns)
		return 0;
	emit_exit(task, leader, sig, ns, level);
	/* The zone is down when its init's task is freed. */
	who.tgid = BPF_CORE_READ(leader, tgid);
	who.start_ns = BPF_CORE_READ(leader, start_boottime);
	add_dying((__u64)leader, &who);
	return 0;
}

/* sched_process_exit(task[, group_dead]): a thread exited (see seen_exit()). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(zm_exit, struct task_struct *task)
{
	/* The threads of a group share its PID namespace: the first test decides for nearly all. */
	if (!boot_namespaces(task))
		seen_exit(task);
	return 0;
}

/* The rest of zm_free, while some zone init is dying. */
static __noinline int seen_free(struct task_struct *task)
{
	struct zm_dying *found, who;
	__u64 key = (__u64)task;

	found = bpf_map_lookup_elem(&dying, &key);
	if (!found)
		return 0;
	who = *found;
	if (bpf_map_delete_elem(&dying, &key) == 0)
		__sync_fetch_and_add(&dying_count, -1);
	emit_gone(&who);
	return 0;
}

/* sched_process_free(task): a dying zone init's task is freed; the zone is gone. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(zm_free, struct task_struct *task)
{
	/* No zone init is dying (nearly always): no lookup. */
	if (dying_count > 0)
		seen_free(task);
	return 0;
}

/*
 * The OOM killer chose `task`, a process of the host's PID namespace: if it
 * is a host-PID zone's process, it is reported against that zone.
 */
static __always_inline void host_oom(struct task_struct *task, struct pid *pid)
{
	struct zm_host_zone *zone;
	__u32 mntns = 0;

	if (host_zone_count <= 0)
		return;
	zone = host_zone_of(task, &mntns);
	if (!zone)
		return;
	emit_known(ZM_KIND_OOM_VICTIM, zone->init_tgid, zone->init_start_ns,
		   BPF_CORE_READ(pid, numbers[0].ns, ns.inum), BPF_CORE_READ(task, tgid));
}

/*
 * mark_victim(task, uid): the OOM killer chose `task` (for a whole cgroup
 * killed as a group, every member in turn). A victim inside a zone is
 * reported against the innermost zone it is in, whose init is the
 * namespace's child reaper; a host process costs one test (and one lookup
 * of its mount namespace while host-PID zones live).
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(zm_oom, struct task_struct *task)
{
	struct task_struct *init;
	struct pid_namespace *ns;
	unsigned int level;
	struct pid *pid;

	level = task_level(task, &pid);
	if (level == 0) {
		host_oom(task, pid);
		return 0;
	}
	ns = BPF_CORE_READ(pid, numbers[level].ns);
	init = ns ? BPF_CORE_READ(ns, child_reaper) : NULL;
	if (!init)
		return 0;
	emit(ZM_KIND_OOM_VICTIM, init, ns, level, 0, 0, BPF_CORE_READ(task, tgid));
	return 0;
}

/*
 * Run by userspace (BPF_PROG_RUN) for each host-PID zone and process it
 * found in /proc, so that they are counted exactly as the ones the kernel
 * side sees itself (see `enum zm_seed_op`). Returns 1 if it changed anything.
 */
SEC("syscall")
int zm_seed(struct zm_seed *seed)
{
	struct zm_host_member *m, taken;
	struct zm_host_zone *zone;
	__u32 tgid = seed->tgid, mntns = seed->mntns_inum;

	switch (seed->op) {
	case ZM_SEED_INIT:
		zone = bpf_map_lookup_elem(&host_zones, &mntns);
		if (zone)
			return host_join(zone, mntns, tgid, 0);
		return host_create(mntns, tgid, seed->start_ns, 0);
	case ZM_SEED_MEMBER:
		zone = bpf_map_lookup_elem(&host_zones, &mntns);
		return zone ? host_join(zone, mntns, tgid, 0) : 0;
	case ZM_SEED_GONE:
		m = bpf_map_lookup_elem(&host_members, &tgid);
		if (!m || m->start_ns != 0 || m->mntns_inum != mntns)
			return 0;
		taken = *m;
		return host_take(tgid, &taken, 0);
	}
	return 0;
}
