/* rc_net: small socket helpers shared by the harness and the tests. */
#ifndef RC_NET_H
#define RC_NET_H

/* A loopback TCP port that was free a moment ago, for a program that must be told its
 * port before it binds it. It comes from below the kernel's ephemeral port range, so
 * no port-0 bind or outgoing connection can take it before the program binds it; only
 * another process choosing ports in that range explicitly still can (callers that start
 * servers on it retry or report). Falls back to a kernel-chosen port. 0 on failure. */
int rc_net_free_port(void);

#endif
