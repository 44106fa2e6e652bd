#include "test_support.h"

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *test_env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL || value[0] == '\0') {
    fprintf(stderr, "test environment variable %s is not set (run the tests with ctest)\n",
            name);
    abort();
  }
  return value;
}

char *test_path(const char *dir, const char *rel) {
  size_t n = strlen(dir) + strlen(rel) + 2;
  char *p = malloc(n);
  if (p != NULL) snprintf(p, n, "%s/%s", dir, rel);
  return p;
}

char *test_make_temp_dir(const char *prefix) {
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
  size_t n = strlen(tmp) + strlen(prefix) + 16;
  char *p = malloc(n);
  if (p == NULL) return NULL;
  snprintf(p, n, "%s/%s.XXXXXX", tmp, prefix);
  if (mkdtemp(p) == NULL) {
    free(p);
    return NULL;
  }
  return p;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void test_remove_tree(const char *path) {
  if (path != NULL) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + used, 1, cap - used - 1, f);
    used += got;
    if (got == 0) break;
    if (cap - used - 1 == 0) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf == NULL) return NULL;
  buf[used] = '\0';
  if (len != NULL) *len = used;
  return buf;
}

int test_write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return -1;
  size_t put = fwrite(data, 1, len, f);
  int rc = fclose(f);
  return (put == len && rc == 0) ? 0 : -1;
}

int test_run(const char *command_line) {
  int status = system(command_line);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

int test_run_suite(Suite *suite) {
  SRunner *sr = srunner_create(suite);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}

int test_find_process(const char *needle1, const char *needle2) {
  DIR *proc = opendir("/proc");
  if (proc == NULL) return 0;
  int found = 0;
  struct dirent *d;
  while (found == 0 && (d = readdir(proc)) != NULL) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/cmdline", d->d_name);
    size_t len = 0;
    char *cmdline = test_read_file(path, &len);
    if (cmdline == NULL) continue;
    for (size_t i = 0; i + 1 < len; i++)
      if (cmdline[i] == '\0') cmdline[i] = ' ';
    if (strstr(cmdline, needle1) != NULL && (needle2 == NULL || strstr(cmdline, needle2) != NULL))
      found = atoi(d->d_name);
    free(cmdline);
  }
  closedir(proc);
  return found;
}

char *test_junit_invalid(const char *path) {
  const char *shared = test_env("REPLCHECK_SHARED_DIR");
  const char *schemas[] = {"ant-junit.xsd", "jenkins-junit.xsd"};
  for (int i = 0; i < 2; i++) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s/junit/%s' '%s' 2>&1", shared,
             schemas[i], path);
    if (test_run(cmd) != 0) {
      char *msg = NULL;
      if (asprintf(&msg, "%s does not validate against %s", path, schemas[i]) < 0) msg = NULL;
      return msg != NULL ? msg : strdup("invalid");
    }
  }
  return NULL;
}
