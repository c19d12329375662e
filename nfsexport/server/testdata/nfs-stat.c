/* nfs-stat URL: print the octal mode, uid and gid of one file through
 * libnfs, which libnfs-utils' nfs-ls cannot show (it drops setuid). */
#include <stdio.h>
#include <stdint.h>
#include <sys/time.h>
#include <nfsc/libnfs.h>

int main(int argc, char **argv)
{
	struct nfs_context *nfs;
	struct nfs_url *url;
	struct nfs_stat_64 st;

	if (argc != 2) {
		fprintf(stderr, "usage: nfs-stat URL\n");
		return 2;
	}
	nfs = nfs_init_context();
	if (nfs == NULL)
		return 1;
	url = nfs_parse_url_full(nfs, argv[1]);
	if (url == NULL) {
		fprintf(stderr, "%s\n", nfs_get_error(nfs));
		return 1;
	}
	if (nfs_mount(nfs, url->server, url->path) != 0 ||
	    nfs_stat64(nfs, url->file, &st) != 0) {
		fprintf(stderr, "%s\n", nfs_get_error(nfs));
		return 1;
	}
	printf("%llo %llu %llu\n", (unsigned long long)st.nfs_mode,
	       (unsigned long long)st.nfs_uid, (unsigned long long)st.nfs_gid);
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	return 0;
}
