/* iouring_limit: the physical limit under the fanout rows.  Pushes the
 * same bytes a broker would send (a WebSocket frame header plus the
 * payload, --size bytes in all) to --conns already-open loopback sockets
 * with raw io_uring sends and no WebSocket logic: one round sends one frame
 * (or --batch frames in one send) to every socket, like one published
 * message fanned out.  A forked receiver on another CPU drains every socket
 * with epoll and counts bytes.  Bounded: --duration seconds, then stops.
 *
 *   iouring_limit --conns 10000 --size 66 --duration 5 [--batch 1]
 *                 [--send-cpu 0] [--recv-cpu 1] [--json FILE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rc.h"

#define MAX_CONNS 19000  /* one side per process: the fd cap is 20,000 */
#define RING_ENTRIES 4096

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("sched_setaffinity");
}

static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* The receiver: connects n sockets, says so through `ready`, drains until
 * every peer closed or the deadline, and writes the byte count to `out`. */
static int receiver(uint16_t port, unsigned n, int cpu, int ready, int out,
		    double max_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	static uint8_t buf[1 << 20];
	struct epoll_event evs[512];
	uint64_t bytes = 0, end;
	unsigned open_n = 0;
	int ep = epoll_create1(0), one = 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pin(cpu);
	raise_nofile();
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	for (unsigned i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("receiver: connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		open_n++;
	}
	if (write(ready, "r", 1) != 1)
		return 1;
	end = rc_now_ns() + (uint64_t)(max_s * 1e9);
	while (open_n > 0 && rc_now_ns() < end) {
		int k = epoll_wait(ep, evs, 512, 100);
		for (int i = 0; i < k; i++) {
			ssize_t r = recv(evs[i].data.fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0) {
				bytes += (uint64_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
				close(evs[i].data.fd);
				open_n--;
			}
		}
	}
	if (write(out, &bytes, sizeof(bytes)) != sizeof(bytes))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n = 10000, batch = 1;
	size_t size = 66;
	double duration = 5;
	int send_cpu = 0, recv_cpu = 1, c;
	const char *json = NULL;
	static const struct option lo[] = {
		{ "conns", 1, 0, 'n' }, { "size", 1, 0, 's' }, { "duration", 1, 0, 'd' },
		{ "batch", 1, 0, 'b' }, { "send-cpu", 1, 0, 'S' }, { "recv-cpu", 1, 0, 'R' },
		{ "json", 1, 0, 'j' }, { 0, 0, 0, 0 },
	};

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': size = strtoul(optarg, NULL, 10); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'b': batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S': send_cpu = atoi(optarg); break;
		case 'R': recv_cpu = atoi(optarg); break;
		case 'j': json = optarg; break;
		default:
			fprintf(stderr, "usage: iouring_limit --conns N --size BYTES --duration S "
				"[--batch K] [--send-cpu C] [--recv-cpu C] [--json FILE]\n");
			return 2;
		}
	}
	if (n == 0 || n > MAX_CONNS || size == 0 || size > (1 << 20) || batch == 0 ||
	    batch * size > (4u << 20) || duration <= 0 || duration > 600) {
		fprintf(stderr, "iouring_limit: --conns 1..%d, --size 1..1 MiB, --batch*size <= 4 MiB, "
			"--duration (0, 600]\n", MAX_CONNS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	pin(send_cpu);

	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("listen");
		return 1;
	}
	int rp[2], op[2];
	if (pipe(rp) < 0 || pipe(op) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(lfd);
		_exit(receiver(ntohs(sa.sin_port), n, recv_cpu, rp[1], op[1], duration + 30));
	}
	int *fds = calloc(n, sizeof(int));
	for (unsigned i = 0; i < n; i++) {
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0) {
			perror("accept");
			kill(pid, SIGKILL);
			return 1;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	char ch;
	if (read(rp[0], &ch, 1) != 1)
		return 1;

	/* The frame bytes: a server frame header, then filler; --batch copies. */
	uint8_t *frame = malloc(size * batch);
	for (size_t i = 0; i < size * batch; i++)
		frame[i] = (uint8_t)('a' + i % 26);
	size_t len = size * batch;

	struct io_uring ring;
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	int ret = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
	if (ret < 0) {
		p.flags = 0;
		ret = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
	}
	if (ret < 0) {
		fprintf(stderr, "io_uring: %s\n", strerror(-ret));
		kill(pid, SIGKILL);
		return 1;
	}
	/* Registered files, as a broker with direct descriptors has. */
	bool fixed = io_uring_register_files(&ring, fds, n) == 0;

	uint64_t start = rc_now_ns(), end = start + (uint64_t)(duration * 1e9);
	uint64_t sends = 0, rounds = 0, errors = 0, partial = 0;
	while (rc_now_ns() < end) {
		unsigned submitted = 0, done = 0;
		while (done < n) {
			while (submitted < n && submitted - done < RING_ENTRIES) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				if (!sqe)
					break;
				io_uring_prep_send(sqe, fixed ? (int)submitted : fds[submitted], frame, len,
						   MSG_NOSIGNAL);
				if (fixed)
					sqe->flags |= IOSQE_FIXED_FILE;
				submitted++;
			}
			struct io_uring_cqe *cqe;
			io_uring_submit_and_wait(&ring, 1);
			unsigned head, k = 0;
			io_uring_for_each_cqe(&ring, head, cqe) {
				if (cqe->res < 0)
					errors++;
				else if ((size_t)cqe->res < len)
					partial++;
				else
					sends++;
				k++;
			}
			io_uring_cq_advance(&ring, k);
			done += k;
		}
		rounds++;
	}
	double secs = (double)(rc_now_ns() - start) / 1e9;
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	io_uring_queue_exit(&ring);
	uint64_t rbytes = 0;
	if (read(op[0], &rbytes, sizeof(rbytes)) != sizeof(rbytes))
		rbytes = 0;
	waitpid(pid, NULL, 0);

	double dps = (double)sends * batch / secs;
	printf("iouring_limit: %u sockets, %zu-byte frames x %u per send, %.2f s: %llu rounds, "
	       "%.0f deliveries/s, %.1f MB/s; errors %llu, short sends %llu; receiver got %.1f MB "
	       "(%s)\n", n, size, batch, secs, (unsigned long long)rounds, dps,
	       dps * (double)size / 1e6, (unsigned long long)errors, (unsigned long long)partial,
	       (double)rbytes / 1e6,
	       rbytes >= (uint64_t)sends * len ? "all of it" : "NOT all of it");
	if (json) {
		FILE *f = fopen(json, "w");
		if (f) {
			fprintf(f, "{\"conns\": %u, \"size\": %zu, \"batch\": %u, \"seconds\": %.3f, "
				"\"rounds\": %llu, \"deliveries_per_sec\": %.1f, \"mbytes_per_sec\": %.2f, "
				"\"errors\": %llu, \"received_bytes\": %llu, \"sent_bytes\": %llu}\n",
				n, size, batch, secs, (unsigned long long)rounds, dps,
				dps * (double)size / 1e6, (unsigned long long)errors,
				(unsigned long long)rbytes, (unsigned long long)(sends * len));
			fclose(f);
		}
	}
	return errors ? 1 : 0;
}
