/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel structures zonemon reads, with only the fields it uses.
 *
 * Every struct is marked preserve_access_index, so libbpf relocates each
 * field access against the running kernel's BTF (CO-RE): the offsets below
 * are never used as such, only the names and types matter.
 */
#ifndef ZONEMON_KERNEL_H
#define ZONEMON_KERNEL_H

#include <linux/types.h>
#include <linux/bpf.h>

/* Only ever pointed to (the cgroup_attach_task tracepoint's first argument). */
struct cgroup;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

struct ns_common {
	unsigned int inum;
	__u64 ns_id; /* Linux 6.18+: never reused; test with bpf_core_field_exists */
};

struct pid_namespace {
	struct task_struct *child_reaper;
	unsigned int level;
	struct pid_namespace *parent;
	struct ns_common ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[];
};

struct new_utsname {
	char nodename[65];
};

struct uts_namespace {
	struct new_utsname name;
	struct ns_common ns;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct uts_namespace *uts_ns;
	struct mnt_namespace *mnt_ns;
};

struct super_block {
	__u32 s_dev; /* dev_t: the kernel's encoding, MAJOR << 20 | MINOR */
};

struct inode {
	unsigned long i_ino;
};

struct dentry {
	struct inode *d_inode;
	struct super_block *d_sb;
};

struct path {
	struct dentry *dentry;
};

struct fs_struct {
	struct path root;
};

struct signal_struct {
	atomic_t live;
	int group_exit_code;
	unsigned int flags;
};

/* A process's memory: where its arguments lie in it. */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	__u64 start_boottime;
	char comm[16];
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	struct signal_struct *signal;
	struct nsproxy *nsproxy;
	struct fs_struct *fs;
	struct mm_struct *mm;
};

#pragma clang attribute pop

/* signal_struct.flags: the whole thread group is exiting (include/linux/sched/signal.h). */
#define SIGNAL_GROUP_EXIT 0x00000004

#endif /* ZONEMON_KERNEL_H */
