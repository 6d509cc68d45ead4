/*
 * test_log.c - the logger's lines: text lines escape control characters,
 * backslashes and bytes that are not UTF-8 (a name from a registry cannot
 * drive the terminal or forge a line), keep valid UTF-8, end in exactly one
 * newline even when cut; JSON lines escape as JSON does and carry the run
 * id, the image and extra fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

/* Run fn with stderr sent to a temp file; returns what it wrote. */
static char *capture(void (*fn)(void)) {
  char path[] = "/tmp/fl-test-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  off_t n = lseek(fd, 0, SEEK_END);
  char *buf = calloc(1, (size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
  close(fd);
  unlink(path);
  return buf;
}

static void log_hostile_text(void) {
  fl_log_set_json(0);
  fl_log_set_level(FL_LOG_DEBUG);
  fl_log(FL_LOG_WARN, "reg/app:\x1b]0;t\a",
         "tag \x1b[2J\r\n0 images replicated \\ \x7f \xc2\x9b \xff caf\xc3\xa9 "
         "\xe6\x97\xa5");
}

static void test_text_escapes(void **state) {
  (void)state;
  char *out = capture(log_hostile_text);
  const char *want = " warn  reg/app:\\e]0;t\\x07: tag \\e[2J\\r\\n0 images "
                     "replicated \\\\ \\x7f \\xc2\\x9b \\xff caf\xc3\xa9 "
                     "\xe6\x97\xa5\n";
  assert_non_null(strstr(out, want));
  assert_null(strchr(out, 0x1b));
  assert_null(strchr(out, '\r'));
  assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
  free(out);
}

static void log_long(void) {
  char big[3000];
  memset(big, 0x01, sizeof big - 1); /* each becomes \x01: the line is cut */
  big[sizeof big - 1] = '\0';
  fl_log_set_json(0);
  fl_log(FL_LOG_ERROR, NULL, "%s\x01", big);
}

static void test_text_long_line(void **state) {
  (void)state;
  char *out = capture(log_long);
  size_t n = strlen(out);
  assert_true(n > 2000);
  assert_int_equal(out[n - 1], '\n');
  assert_ptr_equal(strchr(out, '\n'), out + n - 1);
  free(out);
}

static void log_json_fields(void) {
  fl_log_set_json(1);
  fl_log_set_run_id("run-1");
  fl_log_fields(FL_LOG_INFO, "img\x1b", "\"n\":1,\"code\":\"X\"",
                "m \"q\" \x07");
  fl_log(FL_LOG_INFO, NULL, "plain");
  fl_log_set_json(0);
  fl_log_set_run_id("");
}

static void test_json_fields(void **state) {
  (void)state;
  char *out = capture(log_json_fields);
  assert_non_null(strstr(out, "\"level\":\"info\",\"run_id\":\"run-1\","
                              "\"image\":\"img\\u001b\",\"message\":\"m "
                              "\\\"q\\\" \\u0007\",\"n\":1,\"code\":\"X\"}\n"));
  assert_non_null(strstr(out, "\"run_id\":\"run-1\",\"message\":\"plain\"}\n"));
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_escapes),
      cmocka_unit_test(test_text_long_line),
      cmocka_unit_test(test_json_fields),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
