/* sendzc [SECONDS]: plain IORING_OP_SENDMSG against IORING_OP_SENDMSG_ZC on
 * loopback TCP, for frame sizes from 1 KiB to 256 KiB: the measurement behind
 * core's choice of plain sends (core/README.md, bench/RESULTS.md).
 *
 * One connection, one send in flight (as in core/conn.c), a receiver thread
 * draining the other end with recv(); each mode runs for SECONDS (default 1)
 * per size and reports MB/s and CPU time per send of the sending thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/rc.h"

static double now_s(void)
{
	return (double)rc_now_ns() / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	static char buf[1 << 20];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*a, (struct sockaddr *)&sa, sl) < 0)
		return -1;
	*b = accept(l, NULL, NULL);
	close(l);
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *b < 0 ? -1 : 0;
}

/* Sends size-byte buffers for secs; returns bytes/s and CPU ns per send. */
static int run(struct io_uring *ring, int fd, size_t size, bool zc, double secs,
	       double *mbps, double *cpu_ns)
{
	uint8_t *buf = malloc(size);
	struct iovec iov = { buf, size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	double t0 = now_s(), c0 = cpu_s(), t;
	uint64_t bytes = 0, sends = 0;
	long notifs_due = 0;

	memset(buf, 'x', size);
	do {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		struct io_uring_cqe *cqe;
		bool got_res = false;

		if (zc)
			io_uring_prep_sendmsg_zc(sqe, fd, &msg, MSG_NOSIGNAL);
		else
			io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
		io_uring_submit(ring);
		/* A zero-copy send completes twice: the result, then the
		 * notification that the buffer may be reused.  The next send
		 * need not wait for the notification (the bytes are immutable,
		 * as a shared frame is): only for the result, so ordering holds
		 * with one send in flight.  Notifications are counted as they
		 * come and all awaited at the end. */
		while (!got_res) {
			if (io_uring_wait_cqe(ring, &cqe) < 0)
				return -1;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				notifs_due--;
			} else {
				if (cqe->res < 0) {
					fprintf(stderr, "sendzc: send: %s\n", strerror(-cqe->res));
					return -1;
				}
				bytes += (uint64_t)cqe->res;
				got_res = true;
				if (cqe->flags & IORING_CQE_F_MORE)
					notifs_due++;
			}
			io_uring_cqe_seen(ring, cqe);
		}
		sends++;
		t = now_s();
	} while (t - t0 < secs);
	while (notifs_due > 0) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(ring, &cqe) < 0)
			return -1;
		if (cqe->flags & IORING_CQE_F_NOTIF)
			notifs_due--;
		io_uring_cqe_seen(ring, cqe);
	}
	t = now_s();
	*mbps = (double)bytes / (t - t0) / 1e6;
	*cpu_ns = (cpu_s() - c0) / (double)sends * 1e9;
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1024, 4096, 16384, 65536, 262144 };
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct io_uring ring;
	pthread_t th;
	int a, b;

	if (secs <= 0 || secs > 60) {
		fprintf(stderr, "usage: sendzc [SECONDS (0-60]]\n");
		return 2;
	}
	if (io_uring_queue_init(64, &ring, 0) < 0 || tcp_pair(&a, &b) < 0) {
		perror("sendzc: setup");
		return 1;
	}
	pthread_create(&th, NULL, drain, &b);
	printf("%10s %14s %14s %14s %14s %8s\n", "size", "send MB/s", "send_zc MB/s",
	       "send CPU ns", "send_zc CPU ns", "zc/send");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double m1, c1, m2, c2;
		if (run(&ring, a, sizes[i], false, secs, &m1, &c1) < 0 ||
		    run(&ring, a, sizes[i], true, secs, &m2, &c2) < 0) {
			fprintf(stderr, "sendzc: SENDMSG_ZC needs Linux 6.1+\n");
			return 1;
		}
		printf("%10zu %14.0f %14.0f %14.0f %14.0f %8.2f\n", sizes[i], m1, m2, c1, c2, m2 / m1);
	}
	shutdown(a, SHUT_WR);
	close(a);
	pthread_join(th, NULL);
	close(b);
	io_uring_queue_exit(&ring);
	return 0;
}
