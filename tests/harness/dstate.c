// SPDX-License-Identifier: GPL-2.0
/*
 * dstate - leave a task in D state, for the harness self-test: a vfork()
 * parent waits for its child killably (TASK_KILLABLE, shown as "D") until
 * the child exits or execs, and this child does neither.
 */
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	pid_t pid = vfork();

	if (pid == 0)
		for (;;)
			pause();
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return 0;
}
