#include "rc_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int rc_net_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  int port = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  if (fd >= 0) close(fd);
  return port;
}
