// libnl-3 / libnl-route-3 for Swift, plus the few helpers Swift cannot express because the C
// side uses macros (NLMSG_HDRLEN, nla_for_each_*) or pointer arithmetic on kernel structs.
#ifndef RSAGENT_CNETLINK_SHIM_H
#define RSAGENT_CNETLINK_SHIM_H

#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/ip6tnl.h>
#include <netlink/route/link/ipgre.h>
#include <netlink/route/link/ip6gre.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/rtnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netconf.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <linux/genetlink.h>
#include <linux/fou.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <poll.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/// Sizes Swift cannot get from the macros.
static inline int rs_ifa_max(void) { return IFA_MAX; }
static inline int rs_ifla_max(void) { return IFLA_MAX; }
static inline size_t rs_ifaddrmsg_size(void) { return sizeof(struct ifaddrmsg); }
static inline size_t rs_ifinfomsg_size(void) { return sizeof(struct ifinfomsg); }
static inline int rs_netconfa_max(void) { return NETCONFA_MAX; }
/* NETCONFA_* are macros over an anonymous enum with a computed max. */
static inline int rs_netconfa_ifindex(void) { return NETCONFA_IFINDEX; }
static inline int rs_netconfa_rp_filter(void) { return NETCONFA_RP_FILTER; }

/// Ask the kernel for extended-ack error text (the "ipv4: Address already assigned" strings).
/// libnl 3.7 has no setter for it.
static inline int rs_enable_ext_ack(struct nl_sock *sk) {
    int one = 1;
    int fd = nl_socket_get_fd(sk);
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    return setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
}

/// The NLMSGERR_ATTR_MSG string of an error message, or NULL. `e` points into the received
/// buffer (libnl passes nlmsg_data of the NLMSG_ERROR header), so the header sits just before it.
static inline const char *rs_extack_message(const struct nlmsgerr *e) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return NULL;
    size_t off = sizeof(*e);
    if (!(h->nlmsg_flags & NLM_F_CAPPED))
        off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    if (h->nlmsg_len < NLMSG_HDRLEN + off)
        return NULL;
    const struct nlattr *a = (const struct nlattr *)((const char *)e + NLMSG_ALIGN(off));
    int rem = (int)h->nlmsg_len - (int)NLMSG_HDRLEN - (int)NLMSG_ALIGN(off);
    for (; nla_ok(a, rem); a = nla_next(a, &rem)) {
        if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) > 0) {
            const char *s = (const char *)nla_data(a);
            if (s[nla_len(a) - 1] == '\0')
                return s;
        }
    }
    return NULL;
}

/// `ip -6 tunnel change NAME mode …`: sets the inner protocol of an ip6tnl device (0 any,
/// IPPROTO_IPIP, IPPROTO_IPV6). Until Linux 6.17 the fallback `ip6tnl0` refuses every netlink
/// change (EINVAL) and takes its protocol only through this ioctl. Reads the parameters, changes
/// the protocol, writes them back. 0, or -errno.
/* <linux/ip6_tunnel.h> and <linux/if_tunnel.h> clash with <net/if.h>: their ABI, restated. */
struct rs_ip6_tnl_parm {
    char name[IFNAMSIZ];
    int link;
    uint8_t proto;
    uint8_t encap_limit;
    uint8_t hop_limit;
    uint32_t flowinfo;
    uint32_t flags;
    struct in6_addr laddr;
    struct in6_addr raddr;
};
_Static_assert(sizeof(struct rs_ip6_tnl_parm) == 64, "struct ip6_tnl_parm is 64 bytes");
#define RS_SIOCGETTUNNEL (0x89F0 + 0) /* SIOCDEVPRIVATE + 0 */
#define RS_SIOCCHGTUNNEL (0x89F0 + 3)

static inline int rs_ip6tnl_set_proto(const char *name, uint8_t proto) {
    struct rs_ip6_tnl_parm p;
    struct ifreq ifr;
    memset(&p, 0, sizeof p);
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_ifru.ifru_data = (void *)&p;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (ioctl(fd, RS_SIOCGETTUNNEL, &ifr) < 0) {
        rc = -errno;
    } else {
        p.proto = proto;
        if (ioctl(fd, RS_SIOCCHGTUNNEL, &ifr) < 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

#endif
