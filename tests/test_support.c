#include "test_support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
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

char *test_list_dir(const char *dir) {
  struct dirent **entries = NULL;
  int n = scandir(dir, &entries, NULL, alphasort);
  ck_assert_msg(n >= 0, "scandir %s: %s", dir, strerror(errno));
  size_t size = 1, used = 0;
  for (int i = 0; i < n; i++) size += strlen(entries[i]->d_name) + 1;
  char *joined = calloc(1, size);
  ck_assert_ptr_nonnull(joined);
  for (int i = 0; i < n; i++) {
    const char *name = entries[i]->d_name;
    if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
      used += (size_t)snprintf(joined + used, size - used, "%s%s", used > 0 ? " " : "", name);
    free(entries[i]);
  }
  free(entries);
  return joined;
}

pid_t test_spawn_wrapped(const char *const *args) {
  const char *argv[128];
  size_t argc = 0;
  char *wrapper = NULL;
  const char *wrapper_env = getenv("REFWORKER_TEST_WRAPPER");
  if (wrapper_env != NULL && wrapper_env[0] != '\0') {
    wrapper = strdup(wrapper_env);
    ck_assert_ptr_nonnull(wrapper);
    for (char *save = NULL, *w = strtok_r(wrapper, " ", &save); w != NULL && argc < 32;
         w = strtok_r(NULL, " ", &save))
      argv[argc++] = w;
  }
  for (size_t i = 0; args[i] != NULL; i++) {
    ck_assert_msg(argc < sizeof argv / sizeof argv[0] - 1, "too many arguments for %s", args[0]);
    argv[argc++] = args[i];
  }
  argv[argc] = NULL;
  pid_t parent = getpid();
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127); /* the parent died before the line above */
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(wrapper);
  return child;
}

char *test_log_read(const char *path) {
  char *text = test_read_file(path, NULL);
  if (text == NULL) text = strdup("");
  ck_assert_ptr_nonnull(text);
  return text;
}

long test_log_offset(const char *path, const char *needle) {
  char *text = test_log_read(path);
  const char *hit = strstr(text, needle);
  long at = hit != NULL ? (long)(hit - text) : -1;
  free(text);
  return at;
}

size_t test_log_count(const char *path, const char *needle) {
  char *text = test_log_read(path);
  size_t n = 0;
  for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  free(text);
  return n;
}
