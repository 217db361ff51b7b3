/* SPDX-License-Identifier: MIT */
/* Small helpers every module needs: monotonic time, cancellable sleep, secrets. */
#ifndef PP_UTIL_H
#define PP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds on the monotonic clock. */
int64_t pp_now_ms(void);
/* Sleep up to ms; returns false early when cancel_fd becomes readable. */
bool pp_sleep(int64_t ms, int cancel_fd);
/* Constant-time equality of two NUL-terminated secrets (time depends on len of b only). */
bool pp_secret_equal(const char *a, const char *b);
/* Overwrite memory the compiler may not optimise away. */
void pp_wipe(void *p, size_t n);
/* Write a whole file atomically: temp file (mode), fsync, rename or (exclusive) link. */
int pp_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         bool exclusive);
/* Read a small file into a malloc'd NUL-terminated buffer; -1 with errno. */
int pp_read_file(const char *path, char **out, size_t *len, size_t max);
/* mkdir -p with mode for new directories. */
int pp_mkdir_p(const char *path, unsigned mode);

#endif
