/* kmipctl's commands that talk to the admin API (HTTPS, libcurl): tenants and objects, and
 * issue-admin, which makes an administrator's certificate from the CA's files. */
#ifndef KMIPD_CTL_H
#define KMIPD_CTL_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses scripts can rely on. */
#define CTL_EXIT_OK	     0
#define CTL_EXIT_FAILED	     1 /* the node refused or failed the request; the message says why */
#define CTL_EXIT_USAGE	     2
#define CTL_EXIT_DEGRADED    3 /* cluster status: a member did not answer, or no leader */
#define CTL_EXIT_NOT_FOUND   4 /* no such tenant or object */
#define CTL_EXIT_UNREACHABLE 5 /* no connection to the node, or TLS failed */

/* Runs `kmipctl tenant|object|client|pki|cluster ...` or `kmipctl issue-admin ...`: @argv[0]
 * is the command. @data_dir is kmipctl's --data-dir (NULL if not given). Returns the exit
 * status. */
int ctl_admin_command(const char *data_dir, int argc, char **argv);

/* Parses a node id: a positive decimal number of @len bytes, no sign or spaces. 0 or
 * KMIPD_EINVAL. */
int ctl_parse_node_id(const char *text, size_t len, uint64_t *id);

#endif
