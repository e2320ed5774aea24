// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Run once by the loader before zonemon.bpf.c's programs are loaded: finds
 * the set of namespaces the kernel started with, whose address those
 * programs then hold as an immediate (see ZM_BOOT_NSPROXY_MARK).
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "zonemon.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Fills `out` with the namespaces of the kernel's first task (the idle task
 * of CPU 0, its own real parent), found by walking up from the caller.
 * Returns 1 if found, else 0 (then `out->nsproxy` is 0).
 */
SEC("syscall")
int zm_first_namespaces(struct zm_first_ns *out)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *up;
	struct nsproxy *nsp;
	int i;

	out->nsproxy = 0;
	out->mntns_inum = 0;
	for (i = 0; i < 1024; i++) {
		up = BPF_CORE_READ(task, real_parent);
		if (!up || up == task)
			break;
		task = up;
	}
	if (BPF_CORE_READ(task, real_parent) != task)
		return 0;
	nsp = BPF_CORE_READ(task, nsproxy);
	if (!nsp)
		return 0;
	out->nsproxy = (__u64)nsp;
	out->mntns_inum = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	return 1;
}
