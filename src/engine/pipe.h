/*
 * pipe.h - a bounded in-memory byte pipe between two threads.
 *
 * A blob copy runs the source download on one thread and the destination
 * upload on another; this pipe joins them in constant memory. The writer
 * blocks while the ring is full, the reader while it is empty. Either side
 * can fail the pipe with an error, which wakes the other and makes its next
 * call return that error, so a failure on one side stops the other promptly.
 */
#ifndef FL_ENGINE_PIPE_H
#define FL_ENGINE_PIPE_H

#include <stddef.h>

#include "freightliner.h"

typedef struct fl_pipe fl_pipe;

fl_pipe *fl_pipe_new(size_t capacity);
void fl_pipe_free(fl_pipe *p);

/* Write all of data (blocking). Returns the failure if the pipe failed. */
fl_code fl_pipe_write(fl_pipe *p, const void *data, size_t len, fl_error *err);
/* Mark the end of the data (the writer is done). */
void fl_pipe_close(fl_pipe *p);
/* Read up to len bytes (blocking): >0 bytes, 0 at the end, -1 on failure
 * (err set from the failure). */
long long fl_pipe_read(fl_pipe *p, void *buf, size_t len, fl_error *err);
/* Fail the pipe with err (first failure wins); wakes both sides. */
void fl_pipe_fail(fl_pipe *p, const fl_error *err);
/* Empty the pipe and clear its end and failure, for a new writer. Only
 * while no writer is running (after the old one was joined). */
void fl_pipe_reset(fl_pipe *p);

#endif
