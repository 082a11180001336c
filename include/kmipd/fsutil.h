/* Small helpers shared by the modules that touch files and report errors as sentences. */
#ifndef KMIPD_FSUTIL_H
#define KMIPD_FSUTIL_H

#include <stddef.h>

/* Formats an error sentence into @errmsg (@errlen bytes); does nothing if @errmsg is NULL
 * or @errlen is 0. */
void errmsgf(char *errmsg, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* fsyncs the directory holding @path, so that a newly created entry survives a crash.
 * 0, -errno or KMIPD_ENOMEM. */
int fsync_parent_dir(const char *path);

#endif
