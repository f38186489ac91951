/* Loop and server error paths and lifetimes: a loop that cannot be made
 * gives back everything it took, a client connection that runs out of
 * memory closes its descriptor once, and buffers made on a loop thread stay
 * valid after rc_server_run returned, until rc_server_free. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "support/alloc_count.h"

TestSuite(loop, .timeout = 30);

/* Virtual memory of this process, KiB (VmSize in /proc/self/status). */
static long vm_size_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* With one descriptor left, the ring is set up (with its 16 MiB of provided
 * buffers mapped) and the eventfd after it fails: rc_loop_new must unmap
 * the buffers it mapped, not only exit the ring. */
Test(loop, failed_new_unmaps_its_buffers)
{
	struct rlimit old, rl;
	long before, after;
	int lowest = dup(0);

	cr_assert_geq(lowest, 0);
	close(lowest); /* every descriptor below it is open */
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = (rlim_t)lowest + 1; /* room for the ring's fd only */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	before = vm_size_kb();
	for (int i = 0; i < 4; i++) {
		errno = 0;
		cr_assert_null(rc_loop_new(NULL), "a loop without room for its eventfd");
		cr_assert_eq(errno, EMFILE, "errno %d (%s)", errno, strerror(errno));
	}
	after = vm_size_kb();
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* Each leak was 16 MiB of buffers plus the ring of buffer headers. */
	cr_assert_lt(after - before, 8 << 10, "VmSize grew by %ld KiB over 4 failed loops",
		     after - before);
}

/* rc_client_connect opens a socket, then allocates the connection and its
 * client state from the loop's pool.  With the connection's size class
 * stocked and every new pool chunk failing, the state is what runs out:
 * the descriptor must be closed once.  Twice (once through the ring, once
 * by close()) would close whatever took its number in between: here a
 * pipe, which must survive the loop's next turn. */
Test(loop, client_out_of_memory_closes_its_descriptor_once)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	static const struct rc_handlers h = { 0 };
	struct rc_loop *l = rc_loop_new(NULL);
	char url[64];
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), p[2];

	cr_assert_not_null(l);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &sl), 0);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", ntohs(a.sin_port));
	rc__pool_release(rc__pool_alloc(rc__pool_current(), sizeof(struct rc_conn)));
	cr_assert(rc_alloc_count_active(), "the allocation counter is not linked in");
	rc_alloc_fail_from(128 << 10); /* a pool's new chunk, not getaddrinfo's bits */
	errno = 0;
	struct rc_conn *c = rc_client_connect(l, url, NULL, &h, NULL);
	int err = errno;
	rc_alloc_fail_from(0);
	cr_assert_null(c, "no memory for the client state");
	cr_assert_eq(err, ENOMEM);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0); /* takes the freed number */
	rc_loop_stop(l);
	cr_assert_eq(rc_loop_run(l), 0);     /* submits whatever was queued */
	cr_assert_neq(fcntl(p[0], F_GETFD), -1, "the pipe (fd %d) was closed by the ring", p[0]);
	cr_assert_neq(fcntl(p[1], F_GETFD), -1, "the pipe (fd %d) was closed by the ring", p[1]);
	close(p[0]);
	close(p[1]);
	close(lfd);
	rc_loop_free(l);
}

struct kept {
	struct rc_server *s;
	struct rc_buf *buf;
};

/* On the loop thread: a buffer from the loop's pool, kept past the run
 * (as the broker's histories keep messages), then stop. */
static void keep_and_stop(void *arg)
{
	struct kept *k = arg;

	k->buf = rc_buf_new(100);
	cr_assert_not_null(k->buf);
	memcpy(rc_buf_data(k->buf), "kept", 4);
	rc_buf_set_len(k->buf, 4);
	rc_server_stop(k->s);
}

static void *run_server(void *arg)
{
	return (void *)(intptr_t)rc_server_run(arg);
}

Test(loop, pool_buffers_outlive_run_until_free)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct kept k = { 0 };
	struct rc_loop *l = NULL;
	pthread_t th;
	void *ret;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	k.s = rc_server_new(&(struct rc_server_config){ .threads = 1 });
	cr_assert_not_null(k.s);
	cr_assert_eq(rc_server_listen_fd(k.s, lfd), 0);
	cr_assert_eq(pthread_create(&th, NULL, run_server, k.s), 0);
	for (int i = 0; i < 5000 && !(l = rc_server_loop(k.s, 0)); i++)
		usleep(1000);
	cr_assert_not_null(l, "loop 0 started");
	cr_assert_eq(rc_loop_post(l, keep_and_stop, &k), 0);
	pthread_join(th, &ret);
	cr_assert_eq((intptr_t)ret, 0);
	/* The run is over; the pool the buffer lives in must still be there
	 * (AddressSanitizer reports a use after free if it is not). */
	cr_assert_not_null(k.buf);
	cr_assert_eq(memcmp(rc_buf_data(k.buf), "kept", 4), 0);
	rc_buf_unref(k.buf);
	rc_server_free(k.s);
	close(lfd);
}
