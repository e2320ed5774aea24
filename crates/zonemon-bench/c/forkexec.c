/* forkexec N: N times fork + execve("/bin/true") + waitpid, the price of a
 * process that is not a zone. Prints the elapsed CLOCK_MONOTONIC nanoseconds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: forkexec N\n");
		return 2;
	}
	long n = atol(argv[1]);
	char *args[] = { "/bin/true", NULL };
	char *envp[] = { NULL };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			return 1;
		}
		if (p == 0) {
			execve(args[0], args, envp);
			_exit(127);
		}
		int st;
		if (waitpid(p, &st, 0) < 0) {
			perror("waitpid");
			return 1;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "forkexec: /bin/true failed (status %d)\n", st);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
