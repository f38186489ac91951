/* One process owns a listening address.
 *
 * Each loop listens on its own SO_REUSEPORT socket so that the kernel spreads
 * connections over the threads.  The price: Linux lets any socket of the
 * same effective UID that also sets SO_REUSEPORT join the group, so a second
 * ringcast started on the same address would bind fine and silently take
 * half of the new connections.  A socket without SO_REUSEPORT cannot help:
 * every member of a group must set the option, so the first socket cannot
 * both keep others out and let our own threads in.
 *
 * So after binding we look at who else listens there: the sock_diag netlink
 * interface (what `ss -lt` uses) lists the listening TCP sockets of this
 * network namespace with their inodes.  A listener on the same port whose
 * address overlaps ours (equal, or either is a wildcard) and whose inode is
 * not one of our own sockets belongs to someone else: the address is in use.
 * The check runs once after bind (before listen, so a refused start never
 * takes a connection) and once after listen: of two brokers starting at the
 * same moment, each binds before it checks, so the one that checks last sees
 * the other and refuses (both may refuse; never both run).  Without
 * sock_diag (no inet_diag module) the check is skipped with a warning. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

struct laddr {
	int family; /* AF_INET or AF_INET6 (v4-mapped addresses become AF_INET) */
	uint8_t addr[16];
	uint16_t port; /* host order */
};

static void laddr_set(struct laddr *a, int family, const void *addr, uint16_t port)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof(*a));
	a->port = port;
	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		a->family = AF_INET;
		memcpy(a->addr, (const uint8_t *)addr + 12, 4);
	} else {
		a->family = family;
		memcpy(a->addr, addr, family == AF_INET6 ? 16 : 4);
	}
}

static bool laddr_wild(const struct laddr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->addr, zero, a->family == AF_INET6 ? 16 : 4) == 0;
}

/* Whether a connection to one could be accepted by the other.  An IPv6
 * wildcard counts as dual-stack (ringcast never sets IPV6_V6ONLY), which is
 * what a bind without SO_REUSEPORT would also refuse. */
static bool laddr_overlap(const struct laddr *a, const struct laddr *b)
{
	if (a->port != b->port)
		return false;
	if (a->family != b->family)
		return (a->family == AF_INET6 && laddr_wild(a)) ||
		       (b->family == AF_INET6 && laddr_wild(b));
	return laddr_wild(a) || laddr_wild(b) ||
	       memcmp(a->addr, b->addr, a->family == AF_INET6 ? 16 : 4) == 0;
}

/* Dumps listening TCP sockets of one family; *clash is set when one that
 * overlaps `me` is not in own[].  Returns 0 or -errno. */
static int scan_family(int nl, int family, const struct laddr *me,
		       const ino_t *own, unsigned nown, bool *clash)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = 1u << TCP_LISTEN },
	};
	_Alignas(struct nlmsghdr) char buf[16384];

	if (send(nl, &msg, sizeof(msg), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error ? e->error : -EIO;
			}
			const struct inet_diag_msg *d = NLMSG_DATA(h);
			struct laddr them;
			bool mine = false;
			laddr_set(&them, d->idiag_family, d->id.idiag_src, ntohs(d->id.idiag_sport));
			if (!laddr_overlap(me, &them))
				continue;
			for (unsigned i = 0; i < nown && !mine; i++)
				mine = own[i] == (ino_t)d->idiag_inode;
			if (!mine)
				*clash = true;
		}
	}
}

/* Returns 0 when no socket but ours (fd and own_fds[]) listens on an address
 * that overlaps fd's, -EADDRINUSE when another one does. */
int rc__listen_exclusive(int fd, const int *own_fds, unsigned nown)
{
	static atomic_bool warned;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct laddr me;
	ino_t own[RC__MAX_LISTEN_CHECK + 1];
	struct stat st;
	bool clash = false;
	int nl, ret;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		laddr_set(&me, AF_INET6, &s6->sin6_addr, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		laddr_set(&me, AF_INET, &s4->sin_addr, ntohs(s4->sin_port));
	} else {
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	own[0] = st.st_ino;
	if (nown > RC__MAX_LISTEN_CHECK)
		nown = RC__MAX_LISTEN_CHECK;
	for (unsigned i = 0; i < nown; i++)
		own[i + 1] = own_fds[i] >= 0 && fstat(own_fds[i], &st) == 0 ? st.st_ino : 0;
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0) {
		ret = -errno;
		goto skip;
	}
	ret = scan_family(nl, AF_INET, &me, own, nown + 1, &clash);
	if (ret == 0)
		ret = scan_family(nl, AF_INET6, &me, own, nown + 1, &clash);
	close(nl);
	if (ret == 0)
		return clash ? -EADDRINUSE : 0;
skip:
	if (!atomic_exchange(&warned, true))
		rc_log(RC_LOG_WARN, "cannot list listening sockets (sock_diag: %s): "
		       "another process of this user could share the port", strerror(-ret));
	return 0;
}
