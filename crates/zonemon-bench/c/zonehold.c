/* zonehold: keeps zones alive and churns zones, for load tests (`./dev stress`)
 * and the benchmark's scale rows.
 *
 *   zonehold [--prefix P] [--live N] [--churn M] [--duration S] [--init PROG]
 *
 * Makes N zones that stay up: each a child cloned into new PID and UTS
 * namespaces (PID 1 of its own namespace: a zone's init), hostname P<i>, that
 * execs this program as an init that only waits (the zone has booted), or
 * PROG, with no arguments, if given (the benchmark gives zonepause, a far
 * lighter init: see zonepause.c). Then
 * starts M zones per second (M may be fractional: 0.5) that exit at once
 * (hostname P c<i>), for S seconds; S = 0 runs until a signal or, when
 * standard input is a pipe, until it ends. SIGINT and SIGTERM stop it early.
 *
 * The first held zone's exec is awaited (a close-on-exec pipe): if PROG
 * passes the access check but cannot be exec'd (not a program, a missing
 * interpreter), zonehold says so and exits 2 before making another.
 * Prints "live N" once the N zones are up, and at the end
 * "live N churned K elapsed_ns E". Every zone it made is killed and reaped
 * before it exits, and dies with it should it be killed (PR_SET_PDEATHSIG).
 * Exits 1 if a zone cannot be made (see ulimit -u, kernel.pid_max,
 * kernel.threads-max and the cgroup's pids.max).
 *
 * It never walks its children while it holds them: zones that end are
 * reaped by the kernel (SA_NOCLDWAIT), and it sleeps until the next churn
 * zone is due, the duration ends, standard input ends or a signal comes. A
 * waitpid(-1) walks every child under the kernel's tasklist_lock, which every
 * fork and exit on the host then waits for: with 10,000 zones held 2-3.5 ms a
 * call, ten times a second in an earlier version, a latency tail of the
 * host's that the benchmark's scale rows measured as zonemon's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static char self[PATH_MAX];
/* --init: the program held zones exec, or NULL for this one. */
static const char *hold_init;
/* The signal mask the program started with, restored in each zone before its exec. */
static sigset_t start_mask;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Makes one zone named `name` whose init runs this program in `mode`
 * ("hold": waits forever; "exit": exits 0). If `report` is a descriptor (the
 * write end of a close-on-exec pipe), a zone that cannot exec writes the errno
 * there before it exits, negated if it could not even set its hostname.
 * Returns its host PID, or -1. */
static long make_zone(const char *name, const char *mode, int report)
{
	long pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWUTS | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigprocmask(SIG_SETMASK, &start_mask, NULL);
	int named = sethostname(name, strlen(name)) == 0;
	if (named) {
		if (hold_init && strcmp(mode, "hold") == 0)
			execl(hold_init, hold_init, (char *)NULL);
		else
			execl(self, "zonehold", "--zone-init", mode, (char *)NULL);
	}
	int err = named ? errno : -errno;
	if (report >= 0 && write(report, &err, sizeof err) != sizeof err)
		_exit(126);
	_exit(127);
}

/* Makes the first held zone and waits for its exec: 0 once it exec'd, else
 * the errno it could not exec with, negated if it could not set its hostname
 * (its PID in *pid either way, -1 if it was not made: errno then says why). */
static int make_first_zone(const char *name, long *pid)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		*pid = -1;
		return 0;
	}
	*pid = make_zone(name, "hold", fds[1]);
	int made_errno = errno;
	close(fds[1]);
	int err = 0;
	ssize_t r;
	do
		r = read(fds[0], &err, sizeof err);
	while (r < 0 && errno == EINTR);
	close(fds[0]);
	errno = made_errno;
	/* End of file: the exec closed the pipe. */
	return *pid >= 0 && r == sizeof err ? err : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--zone-init") == 0) {
		if (strcmp(argv[2], "hold") == 0)
			for (;;)
				pause();
		return 0;
	}
	const char *prefix = "zmstress-";
	long live = 0;
	double churn = 0, duration = 0;
	static const struct option opts[] = {
		{"prefix", required_argument, 0, 'p'},
		{"live", required_argument, 0, 'l'},
		{"churn", required_argument, 0, 'c'},
		{"duration", required_argument, 0, 'd'},
		{"init", required_argument, 0, 'i'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "p:l:c:d:i:", opts, NULL)) != -1) {
		switch (o) {
		case 'p': prefix = optarg; break;
		case 'l': live = atol(optarg); break;
		case 'c': churn = strtod(optarg, NULL); break; /* "20" or "20/s" */
		case 'd': duration = strtod(optarg, NULL); break;
		case 'i': hold_init = optarg; break;
		default:
			fprintf(stderr, "usage: zonehold [--prefix P] [--live N] [--churn M[/s]] [--duration S] [--init PROG]\n");
			return 2;
		}
	}
	if (strlen(prefix) > 40 || live < 0 || churn < 0 || duration < 0) {
		fprintf(stderr, "zonehold: prefix at most 40 bytes, numbers not negative\n");
		return 2;
	}
	if (hold_init && access(hold_init, X_OK) != 0) {
		fprintf(stderr, "zonehold: --init %s: %s (give a program the zones can exec)\n", hold_init, strerror(errno));
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0) {
		perror("zonehold: /proc/self/exe");
		return 1;
	}
	self[n] = 0;
	sigprocmask(SIG_BLOCK, NULL, &start_mask);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a reader that went away must not stop the clean-up */
	/* Zones that end are reaped by the kernel: no waitpid(-1) walk of every child. */
	struct sigaction reap = {0};
	reap.sa_handler = SIG_DFL;
	reap.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &reap, NULL);

	int rc = 0;
	long *held = calloc(live > 0 ? live : 1, sizeof *held);
	long made = 0, churned = 0;
	char name[64];
	long long t0 = now_ns();
	for (; made < live && !stopping; made++) {
		snprintf(name, sizeof name, "%s%ld", prefix, made);
		if (made == 0) {
			int err = make_first_zone(name, &held[0]);
			if (err) {
				if (err < 0)
					fprintf(stderr, "zonehold: the zones cannot set their hostname (%s): %s\n",
						name, strerror(-err));
				else
					fprintf(stderr, "zonehold: the zones cannot exec %s: %s (%s)\n",
						hold_init ? hold_init : self, strerror(err),
						hold_init ? "--init must name a program" : "its own program");
				/* It has exited (the kernel reaped it): never signalled below,
				 * where its PID may be another process's by then. */
				rc = 2;
				break;
			}
		} else {
			held[made] = make_zone(name, "hold", -1);
		}
		if (held[made] < 0) {
			fprintf(stderr, "zonehold: cannot make zone %ld: %s (see ulimit -u, kernel.pid_max, kernel.threads-max, pids.max)\n",
				made, strerror(errno));
			rc = 1;
			break;
		}
	}
	if (rc == 0 && !stopping) {
		printf("live %ld\n", made);
		fflush(stdout);
	}
	/* From here the stop signals are taken only inside ppoll, which unblocks them
	 * atomically: one that comes before it cannot be missed while it sleeps. */
	sigset_t stops;
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	sigprocmask(SIG_BLOCK, &stops, NULL);
	long long start = now_ns(), next = start;
	long long end = duration > 0 ? start + (long long)(duration * 1e9) : 0;
	long long gap = churn > 0 ? (long long)(1e9 / churn) : 0;
	struct stat in;
	int watch_stdin = !end && fstat(0, &in) == 0 && S_ISFIFO(in.st_mode);
	while (rc == 0 && !stopping) {
		long long t = now_ns();
		if (end && t >= end)
			break;
		if (gap && t >= next) {
			snprintf(name, sizeof name, "%sc%ld", prefix, churned);
			if (make_zone(name, "exit", -1) < 0) {
				fprintf(stderr, "zonehold: cannot make a churn zone: %s\n", strerror(errno));
				rc = 1;
				break;
			}
			churned++;
			next += gap;
			if (next < t - 1000000000LL)
				next = t; /* fell behind by over a second: do not burst to catch up */
			continue;
		}
		long long wait = -1; /* nothing due: until standard input ends or a signal */
		if (gap)
			wait = next - t;
		if (end && (wait < 0 || end - t < wait))
			wait = end - t;
		struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
		struct pollfd p = {.fd = 0, .events = POLLIN};
		int r = ppoll(&p, watch_stdin ? 1 : 0, wait < 0 ? NULL : &ts, &start_mask);
		if (r > 0 && watch_stdin) {
			char buf[256];
			if (read(0, buf, sizeof buf) <= 0)
				break; /* standard input ended */
		}
	}
	for (long i = 0; i < made; i++)
		if (held[i] > 0)
			kill(held[i], SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	printf("live %ld churned %ld elapsed_ns %lld\n", made, churned, now_ns() - t0);
	free(held);
	return rc;
}
