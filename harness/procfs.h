/* procfs: what a SUT holds, read from /proc (observation channel P, requirements.md
 * §0): open descriptors and TCP sockets over its whole process group, so a worker
 * that hands its sockets to a helper process is still counted.
 *
 *   fds     every entry of /proc/<pid>/fd of every process whose process group is the
 *           SUT's (the group leader is the SUT's main pid, sut.h);
 *   tcp     the TCP sockets among those descriptors, matched by inode with
 *           /proc/<pid>/net/tcp and tcp6, with ports and state.
 *
 * A snapshot is a moment's picture: processes and descriptors that come and go while
 * it is taken are skipped, not errors. Linux only. Stateless; thread-safe. */
#ifndef PROCFS_H
#define PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rc_error.h"

/* The kernel's TCP states (include/net/tcp_states.h), as /proc/net/tcp numbers them. */
typedef enum procfs_tcp_state {
  PROCFS_TCP_ANY = 0, /* a filter matching every state */
  PROCFS_TCP_ESTABLISHED = 1,
  PROCFS_TCP_SYN_SENT = 2,
  PROCFS_TCP_SYN_RECV = 3,
  PROCFS_TCP_FIN_WAIT1 = 4,
  PROCFS_TCP_FIN_WAIT2 = 5,
  PROCFS_TCP_TIME_WAIT = 6,
  PROCFS_TCP_CLOSE = 7,
  PROCFS_TCP_CLOSE_WAIT = 8,
  PROCFS_TCP_LAST_ACK = 9,
  PROCFS_TCP_LISTEN = 10,
  PROCFS_TCP_CLOSING = 11,
} procfs_tcp_state_t;

typedef struct procfs_tcp {
  unsigned long inode;
  uint16_t local_port;
  uint16_t remote_port;
  procfs_tcp_state_t state;
} procfs_tcp_t;

typedef struct procfs_snapshot {
  size_t processes; /* in the group */
  size_t fds;       /* open descriptors over the group */
  size_t sockets;   /* of which sockets (any family) */
  procfs_tcp_t *tcp; /* the TCP sockets among them, owned */
  size_t tcp_count;
  /* The inodes of every socket descriptor, owned: a TCP socket that was reset is no
   * longer in /proc/net/tcp (so not in `tcp`) while a descriptor still holds it. */
  unsigned long *socket_inodes;
  size_t socket_inode_count;
} procfs_snapshot_t;

/* Takes a snapshot of process group `pgid`. Returns 0, or -1 with err filled (no
 * process in the group, /proc unreadable, out of memory). Free with
 * procfs_snapshot_free (also after a failure). */
int procfs_snapshot_group(pid_t pgid, procfs_snapshot_t *out, rc_error_t *err);
void procfs_snapshot_free(procfs_snapshot_t *snapshot);

/* TCP sockets of the snapshot with that remote port (0 = any) and state (ANY = any). */
size_t procfs_count_tcp(const procfs_snapshot_t *snapshot, uint16_t remote_port,
                        procfs_tcp_state_t state);

/* The TCP socket of the snapshot with that local port, or NULL. */
const procfs_tcp_t *procfs_find_local(const procfs_snapshot_t *snapshot, uint16_t local_port);

/* Whether a descriptor of the snapshot holds the socket with that inode (in any state,
 * also one gone from the TCP table). */
bool procfs_holds_socket(const procfs_snapshot_t *snapshot, unsigned long inode);

/* "ESTABLISHED", "CLOSE_WAIT", ...; "UNKNOWN" for other numbers. */
const char *procfs_tcp_state_name(procfs_tcp_state_t state);

/* "3 processes, 14 fds (5 sockets); tcp: :41234->:8008 ESTABLISHED, ..." (at most cap
 * bytes, the TCP list cut with "..."): evidence for messages. Returns buf. */
const char *procfs_describe(const procfs_snapshot_t *snapshot, char *buf, size_t cap);

/* Parses one data line of /proc/net/tcp or tcp6 ("  0: 0100007F:1F90 0100007F:A1B2 01
 * ..."). Returns true with *out, false for the header or a malformed line. */
bool procfs_parse_tcp_line(const char *line, procfs_tcp_t *out);

#endif
