/* kmipd_strerror(): the text of every kmipd error code and of passed-through errnos. */
#include "kmipd/error.h"

#include <string.h>

static const char *const texts[] = {
#define TEXT_(name, text) text,
	KMIPD_ERRORS(TEXT_)
#undef TEXT_
};

const char *kmipd_strerror(int code)
{
	if (code == 0)
		return "success";
	if (code > KMIPD_EBASE_ && code < KMIPD_ELAST_)
		return texts[code - KMIPD_EBASE_ - 1];
	if (code < 0 && code >= -KMIPD_ERRNO_MAX)
		return strerror(-code);
	return "unknown error";
}
