/*
 * jsonmem.h - parsing JSON from a remote with "out of memory" told apart.
 *
 * jansson reports an allocation that fails while it parses as a syntax
 * error ("invalid token"), so a registry sending a big enough document to a
 * process near its memory limit would be blamed for malformed JSON. Every
 * parse of remote JSON goes through fl_json_loadb, which installs (once) an
 * allocator that notes a failed allocation in a thread-local flag and says
 * whether the parse failed for want of memory. The allocator is plain
 * malloc/free underneath, so objects from before it was installed are freed
 * correctly. Safe from any thread.
 */
#ifndef FL_CORE_JSONMEM_H
#define FL_CORE_JSONMEM_H

#include <stddef.h>

#include <jansson.h>

/* json_loadb(buf, len, 0, jerr); on NULL, *oom is 1 when an allocation
 * failed (the message should then say "out of memory", code FL_ENOMEM). */
json_t *fl_json_loadb(const char *buf, size_t len, json_error_t *jerr,
                      int *oom);

/* Install the allocator now (start-up, before threads); idempotent. */
void fl_json_init(void);

#endif
