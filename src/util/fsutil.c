/* File-system and error-message helpers; see fsutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmipd/error.h"
#include "kmipd/fsutil.h"

void errmsgf(char *errmsg, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errmsg == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, errlen, fmt, ap);
	va_end(ap);
}

int fsync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, rv = 0;

	if (copy == NULL)
		return KMIPD_ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rv = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rv;
}
