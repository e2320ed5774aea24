/* zonepause: the init of a zone held up by zonehold (`--init`), for the
 * benchmark's scale rows. It waits for ever in pause(2) and is the lightest
 * program a zone's init can be: no C library, one page of code, a stack page;
 * built with -static -nostdlib.
 *
 * Why it matters: the held zones must load the host no more than their being
 * there does. Held zones that ran zonehold itself (glibc, static: about 48 KiB
 * of private memory and 42 KiB of page tables each) made this VM's memory
 * monitor (kdamond, DAMON with a pageout scheme) work 5-20 times harder with
 * 10,000 of them, in stretches of up to 20 ms on a kernel that does not
 * preempt: every wakeup on the host, zonemon's or not, came later (p99 of a
 * pipe wakeup 77-101 us against 31 us with none held). With this init, 10,000
 * held zones left kdamond and the wakeup floor as they were with none. */
#if defined(__x86_64__)
#define SYS_PAUSE "mov $34, %%eax\n\tsyscall"
#define CLOBBERS "rax", "rcx", "r11", "memory"
#elif defined(__aarch64__)
/* aarch64 has no pause(2): ppoll with no descriptors and no timeout. */
#define SYS_PAUSE "mov x0, #0\n\tmov x1, #0\n\tmov x2, #0\n\tmov x3, #0\n\tmov x4, #0\n\tmov x8, #73\n\tsvc #0"
#define CLOBBERS "x0", "x1", "x2", "x3", "x4", "x8", "memory"
#else
#error "zonepause: no system call sequence for this architecture"
#endif

void _start(void)
{
	for (;;)
		__asm__ volatile(SYS_PAUSE ::: CLOBBERS);
}
