/*
 * Empty programs on the scheduler tracepoints zonemon's programs use (an
 * exec is seen at sched_prepare_exec, or at sched_process_exec before 6.10):
 * what `kernel.bpf_stats_enabled` measures for a program that does nothing
 * (its timing and the program's entry and exit), the floor under each of
 * zonemon's per-call figures. Compiled by the benchmark with clang.
 */
char LICENSE[] __attribute__((section("license"), used)) = "GPL";

#define NOP(tracepoint, name) \
	__attribute__((section("tp_btf/" tracepoint), used)) int name(void *ctx) { return 0; }

NOP("sched_process_fork", nop_fork)
NOP("sched_prepare_exec", nop_prepare_exec)
NOP("sched_process_exec", nop_exec)
NOP("sched_process_exit", nop_exit)
NOP("sched_process_free", nop_free)
