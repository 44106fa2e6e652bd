/* procfs: descriptors and TCP sockets of a process group (see procfs.h). */
#include "procfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Socket inodes of the group, collected before /proc/<pid>/net/tcp is read. */
typedef struct inode_set {
  unsigned long *items;
  size_t count, cap;
} inode_set_t;

static int inode_add(inode_set_t *set, unsigned long inode) {
  if (set->count == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 64;
    unsigned long *grown = realloc(set->items, cap * sizeof *grown);
    if (grown == NULL) return -1;
    set->items = grown;
    set->cap = cap;
  }
  set->items[set->count++] = inode;
  return 0;
}

static bool inode_has(const inode_set_t *set, unsigned long inode) {
  for (size_t i = 0; i < set->count; i++)
    if (set->items[i] == inode) return true;
  return false;
}

/* The process group of pid from /proc/<pid>/stat, or -1 (gone, unreadable). The command
 * name in parentheses may hold spaces and ')' itself: the fields start after the last
 * ')'. */
static pid_t stat_pgrp(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *close = strrchr(buf, ')');
  int ppid = 0, pgrp = -1;
  char state = 0;
  if (close == NULL || sscanf(close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return -1;
  return (pid_t)pgrp;
}

/* Adds pid's descriptors to the snapshot and its socket inodes to sockets. */
static int scan_fds(pid_t pid, procfs_snapshot_t *out, inode_set_t *sockets) {
  char dir_path[64];
  snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", (int)pid);
  DIR *dir = opendir(dir_path);
  if (dir == NULL) return 0; /* exited meanwhile, or not ours to read */
  struct dirent *d;
  int rc = 0;
  while ((d = readdir(dir)) != NULL) {
    if (!isdigit((unsigned char)d->d_name[0])) continue;
    char link_path[320], target[128];
    snprintf(link_path, sizeof link_path, "%s/%s", dir_path, d->d_name);
    ssize_t n = readlink(link_path, target, sizeof target - 1);
    if (n < 0) continue; /* closed meanwhile */
    target[n] = '\0';
    out->fds++;
    unsigned long inode;
    if (sscanf(target, "socket:[%lu]", &inode) == 1) {
      out->sockets++;
      if (inode_add(sockets, inode) != 0) rc = -1;
    }
  }
  closedir(dir);
  return rc;
}

bool procfs_parse_tcp_line(const char *line, procfs_tcp_t *out) {
  unsigned int local_port, remote_port, state;
  unsigned long inode;
  char local[64], remote[64];
  /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
  if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %63[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
             local, &local_port, remote, &remote_port, &state, &inode) != 6)
    return false;
  if (local_port > 0xffff || remote_port > 0xffff) return false;
  out->local_port = (uint16_t)local_port;
  out->remote_port = (uint16_t)remote_port;
  out->state = (procfs_tcp_state_t)state;
  out->inode = inode;
  return true;
}

/* Adds the TCP sockets of `table` (pid's view of /proc/net/tcp or tcp6) whose inode is
 * in sockets and not yet listed. */
static int scan_tcp_table(pid_t pid, const char *table, const inode_set_t *sockets,
                          procfs_snapshot_t *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, table);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0; /* no IPv6, or the process is gone */
  char line[512];
  int rc = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    procfs_tcp_t entry;
    if (!procfs_parse_tcp_line(line, &entry) || !inode_has(sockets, entry.inode)) continue;
    bool known = false;
    for (size_t i = 0; i < out->tcp_count && !known; i++) known = out->tcp[i].inode == entry.inode;
    if (known) continue;
    procfs_tcp_t *grown = realloc(out->tcp, (out->tcp_count + 1) * sizeof *grown);
    if (grown == NULL) {
      rc = -1;
      break;
    }
    out->tcp = grown;
    out->tcp[out->tcp_count++] = entry;
  }
  fclose(f);
  return rc;
}

int procfs_snapshot_group(pid_t pgid, procfs_snapshot_t *out, rc_error_t *err) {
  memset(out, 0, sizeof *out);
  DIR *proc = opendir("/proc");
  if (proc == NULL) return rc_error_set(err, "/proc: cannot open: %s", strerror(errno));
  inode_set_t sockets = {0};
  pid_t first = -1;
  int rc = 0;
  struct dirent *d;
  while (rc == 0 && (d = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)d->d_name[0])) continue;
    pid_t pid = (pid_t)atoi(d->d_name);
    if (stat_pgrp(pid) != pgid) continue;
    out->processes++;
    if (first < 0) first = pid;
    if (scan_fds(pid, out, &sockets) != 0) rc = rc_error_set(err, "procfs: out of memory");
  }
  closedir(proc);
  if (rc == 0 && out->processes == 0)
    rc = rc_error_set(err, "procfs: no process in process group %d (the SUT has exited?)",
                      (int)pgid);
  /* One network namespace per group: the first member's view lists every socket. */
  if (rc == 0 && (scan_tcp_table(first, "tcp", &sockets, out) != 0 ||
                  scan_tcp_table(first, "tcp6", &sockets, out) != 0))
    rc = rc_error_set(err, "procfs: out of memory");
  out->socket_inodes = sockets.items;
  out->socket_inode_count = sockets.count;
  return rc;
}

void procfs_snapshot_free(procfs_snapshot_t *snapshot) {
  free(snapshot->tcp);
  snapshot->tcp = NULL;
  snapshot->tcp_count = 0;
  free(snapshot->socket_inodes);
  snapshot->socket_inodes = NULL;
  snapshot->socket_inode_count = 0;
}

bool procfs_holds_socket(const procfs_snapshot_t *snapshot, unsigned long inode) {
  inode_set_t set = {.items = snapshot->socket_inodes, .count = snapshot->socket_inode_count};
  return inode_has(&set, inode);
}

size_t procfs_count_tcp(const procfs_snapshot_t *snapshot, uint16_t remote_port,
                        procfs_tcp_state_t state) {
  size_t n = 0;
  for (size_t i = 0; i < snapshot->tcp_count; i++) {
    const procfs_tcp_t *s = &snapshot->tcp[i];
    if ((remote_port == 0 || s->remote_port == remote_port) &&
        (state == PROCFS_TCP_ANY || s->state == state))
      n++;
  }
  return n;
}

const procfs_tcp_t *procfs_find_local(const procfs_snapshot_t *snapshot, uint16_t local_port) {
  for (size_t i = 0; i < snapshot->tcp_count; i++)
    if (snapshot->tcp[i].local_port == local_port) return &snapshot->tcp[i];
  return NULL;
}

const char *procfs_tcp_state_name(procfs_tcp_state_t state) {
  static const char *const NAMES[] = {
      "ANY",       "ESTABLISHED", "SYN_SENT", "SYN_RECV",   "FIN_WAIT1", "FIN_WAIT2",
      "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};
  return (unsigned)state < sizeof NAMES / sizeof NAMES[0] ? NAMES[state] : "UNKNOWN";
}

const char *procfs_describe(const procfs_snapshot_t *snapshot, char *buf, size_t cap) {
  if (cap == 0) return buf;
  int n = snprintf(buf, cap, "%zu process%s, %zu fds (%zu sockets); tcp:", snapshot->processes,
                   snapshot->processes == 1 ? "" : "es", snapshot->fds, snapshot->sockets);
  size_t used = n > 0 ? (size_t)n : 0;
  if (snapshot->tcp_count == 0 && used < cap) snprintf(buf + used, cap - used, " none");
  for (size_t i = 0; i < snapshot->tcp_count && used < cap; i++) {
    const procfs_tcp_t *s = &snapshot->tcp[i];
    n = snprintf(buf + used, cap - used, "%s :%u->:%u %s", i ? "," : "", s->local_port,
                 s->remote_port, procfs_tcp_state_name(s->state));
    if (n < 0 || (size_t)n >= cap - used) {
      if (cap > 4) memcpy(buf + cap - 4, "...", 4);
      break;
    }
    used += (size_t)n;
  }
  return buf;
}
