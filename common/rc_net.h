/* rc_net: small socket helpers shared by the harness and the tests. */
#ifndef RC_NET_H
#define RC_NET_H

/* A loopback TCP port that was free a moment ago (bound to port 0 and released), for
 * a program that must be told its port before it binds it. Another process may take
 * it in between; callers that start servers on it retry or report. 0 on failure. */
int rc_net_free_port(void);

#endif
