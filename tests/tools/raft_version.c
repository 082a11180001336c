/* Proves which libraft kmipd links: prints raft_version_number() and exits 0 only for the
 * 0.22 line that the dependency script builds (Debian 12's 0.15 has Raft safety bugs). */
#include <raft.h>
#include <stdio.h>

int main(void)
{
	int v = raft_version_number();

	printf("libraft %d.%d.%d (%d)\n", v / 10000, v / 100 % 100, v % 100, v);
	return v == 2201 ? 0 : 1;
}
