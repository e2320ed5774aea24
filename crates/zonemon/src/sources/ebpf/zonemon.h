/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of what the kernel side tells userspace.
 *
 * zonemon.bpf.c fills `struct zm_event` records into the `events` ring
 * buffer; the Rust type of the same name is generated from this header by
 * libbpf-cargo (see build.rs), so the layout exists only here.
 */
#ifndef ZONEMON_H
#define ZONEMON_H

/* Length of a task's comm, as the kernel's TASK_COMM_LEN. */
#define ZM_COMM_LEN 16
/* Length of a UTS nodename plus its NUL, as the kernel's __NEW_UTS_LEN + 1. */
#define ZM_NODENAME_LEN 65
/* Processes in an INIT_FORK record's lineage: the creator and three generations above the init. */
#define ZM_LINEAGE_LEN 4
/* Longest command line an INIT_FORK record carries of the init's creator (a power of two). */
#define ZM_CMDLINE_LEN 256

/* What a record reports. */
enum zm_kind {
	/* A task became PID 1 of a new PID namespace (the zone is "ready"). */
	ZM_KIND_INIT_FORK = 1,
	/* A zone's init exec'd a program (the first one makes it "booted"). */
	ZM_KIND_INIT_EXEC = 2,
	/* The last thread of a zone's init exited ("shutdown"). */
	ZM_KIND_INIT_EXIT = 3,
	/* A zone's init was reaped and freed: nothing of the zone is left ("down"). */
	ZM_KIND_INIT_FREE = 4,
	/*
	 * The OOM killer chose a process of a zone (`victim_pid`; the zone's init
	 * itself when equal to `init_pid`). No transition: it marks the zone's shutdown.
	 */
	ZM_KIND_OOM_VICTIM = 5,
	/*
	 * A zone's init was moved to another cgroup (in any hierarchy). No
	 * transition: what userspace read of its cgroups may be out of date.
	 */
	ZM_KIND_INIT_CGROUP = 6,
};

/* What userspace asks of the `zm_seed` program (see `struct zm_seed`). */
enum zm_seed_op {
	/*
	 * `tgid` is the init of the host-PID zone in mount namespace
	 * `mntns_inum` (found in /proc at start-up): adds the zone, unless the
	 * kernel side knows it already, and the init as its first process.
	 */
	ZM_SEED_INIT = 1,
	/* `tgid` is a process of that zone: adds it, unless it is counted already. */
	ZM_SEED_MEMBER = 2,
	/*
	 * `tgid`, added by one of the above, had exited by then (its exit came
	 * before the kernel side knew it): takes it out again, which may be the
	 * zone's down.
	 */
	ZM_SEED_GONE = 3,
};

/*
 * The context of the `zm_seed` program, which userspace runs (BPF_PROG_RUN)
 * to tell the kernel side of the host-PID zones (`docker run --pid=host`)
 * and their processes that were running before it attached: the kernel
 * side's own bookkeeping, done by the kernel side, so that it stays atomic
 * with the forks and exits it sees meanwhile.
 */
struct zm_seed {
	/* One of enum zm_seed_op. */
	__u32 op;
	/* Host PID of the process. */
	__u32 tgid;
	/* Inode number of the zone's mount namespace. */
	__u32 mntns_inum;
	/* Padding, always 0. */
	__u32 _pad;
	/* ZM_SEED_INIT: when the init was created (CLOCK_BOOTTIME ns, /proc's precision). */
	__u64 start_ns;
};

/*
 * The context of the `zm_first_namespaces` program (first_ns.bpf.c), which
 * userspace runs (BPF_PROG_RUN) once before it loads the others: the set of
 * namespaces the kernel started with (the kernel's `init_nsproxy`, which
 * its first task holds), filled in by the program.
 */
struct zm_first_ns {
	/* The set's kernel address; 0 if it was not found. */
	__u64 nsproxy;
	/* Inode number of the set's mount namespace. */
	__u32 mntns_inum;
	/* Padding, always 0. */
	__u32 _pad;
};

/*
 * What zonemon.bpf.c's programs hold in place of `zm_first_ns.nsproxy`, an
 * address the kernel learns only at run time: the loader replaces this
 * 64-bit immediate with the address (or 0, unknown) before the programs are
 * loaded, so that telling a plain host process reads no memory but the
 * task's own (see boot_namespaces() there).
 */
#define ZM_BOOT_NSPROXY_MARK 0x7a6d626f6f746e73ULL /* "zmbootns" */

/* One observation of a zone's init, made by the kernel at `ts_ns`. */
struct zm_event {
	/* CLOCK_BOOTTIME nanoseconds when the kernel saw the transition. */
	__u64 ts_ns;
	/* CLOCK_BOOTTIME nanoseconds when the zone's init was forked. */
	__u64 start_ns;
	/* Never-reused id of the zone's PID namespace (ns_common.ns_id), 0 if the kernel has none. */
	__u64 ns_id;
	/* Never-reused id of the parent PID namespace, 0 at top level or if unknown. */
	__u64 parent_ns_id;
	/* One of enum zm_kind. */
	__u32 kind;
	/* Inode number of the zone's PID namespace. */
	__u32 pidns_inum;
	/* Inode number of the parent PID namespace. */
	__u32 parent_pidns_inum;
	/* Host PID of the parent namespace's init (0 when the parent is the host). */
	__u32 parent_init_pid;
	/* Depth of the zone's PID namespace (1 = directly under the host's; 0 = the host's own). */
	__u32 level;
	/* Host PID (tgid) of the zone's init. */
	__u32 init_pid;
	/* Host PID of the process that forked the init (INIT_FORK only). */
	__u32 creator_pid;
	/* Inode number of the init's UTS namespace at the time of the record. */
	__u32 utsns_inum;
	/* wait()-style status: exit code << 8, or the killing signal (INIT_EXIT only). */
	__s32 exit_status;
	/* Host PID (tgid) of the OOM killer's victim (OOM_VICTIM only, else 0). */
	__u32 victim_pid;
	/* The init's comm at the time of the record. */
	char comm[ZM_COMM_LEN];
	/* The nodename of the init's UTS namespace at the time of the record. */
	char nodename[ZM_NODENAME_LEN];
	/* Padding, always 0. */
	char _pad2[7];
};

/* A process above a zone's init, as it was when the init was forked. */
struct zm_forebear {
	/* Host PID (tgid); 0 for none. */
	__u32 pid;
	/* Its comm (the thread group leader's, as /proc/<pid>/comm), NUL-terminated. */
	char comm[ZM_COMM_LEN];
};

/*
 * The record of kind ZM_KIND_INIT_FORK: the common record, then who was
 * above the new init at that moment, so that userspace need not read /proc
 * to find them. Only this kind carries it (the other records stay small).
 * The record ends after the first `creator_cmdline_len` bytes of
 * `creator_cmdline`: the rest is not sent.
 */
struct zm_fork_event {
	struct zm_event event;
	/*
	 * [0] the creator (the process that forked the init, `creator_pid`),
	 * [1] the init's parent (the creator, or the creator's parent after
	 * CLONE_PARENT), [2] and [3] the parent's parent and its parent.
	 */
	struct zm_forebear lineage[ZM_LINEAGE_LEN];
	/*
	 * Bytes of `creator_cmdline` that hold the creator's command line, as
	 * /proc/<creator>/cmdline would give it (NUL-separated, the last byte a
	 * NUL), copied from its memory at the fork; 0 when it was not copied
	 * whole (longer than ZM_CMDLINE_LEN, rewritten past its end, or not in
	 * memory): userspace reads /proc then.
	 */
	__u32 creator_cmdline_len;
	/* The creator's command line; only the first `creator_cmdline_len` bytes are meaningful. */
	char creator_cmdline[ZM_CMDLINE_LEN];
	/* Padding, always 0. */
	char _pad3[4];
};

#endif /* ZONEMON_H */
