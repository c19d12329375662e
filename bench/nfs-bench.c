/* nfs-bench: the parts of bench/nfs.sh that would otherwise start one
 * libnfs-utils process per file (process start-up would dominate).
 *
 *   nfs-bench mkfiles URL N        create N 1 KiB files f00000... in the
 *                                  directory URL points to
 *   nfs-bench readset URL PATH...  read each PATH (relative to URL) fully
 *   nfs-bench hold URL SECONDS     mount, read the root, hold the
 *                                  connection open (for RSS figures)
 *
 * URL is a libnfs directory URL: nfs://HOST/EXPORT/DIR?version=3&...
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <nfsc/libnfs.h>

static struct nfs_context *connect_url(const char *u)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *url;

	if (nfs == NULL)
		exit(1);
	url = nfs_parse_url_dir(nfs, u);
	if (url == NULL) {
		fprintf(stderr, "%s: %s\n", u, nfs_get_error(nfs));
		exit(1);
	}
	if (nfs_mount(nfs, url->server, url->path) != 0) {
		fprintf(stderr, "mount %s: %s\n", u, nfs_get_error(nfs));
		exit(1);
	}
	nfs_destroy_url(url);
	return nfs;
}

int main(int argc, char **argv)
{
	struct nfs_context *nfs;
	struct nfsfh *fh;
	static char buf[1 << 20];
	char path[64];
	long long total = 0;
	int i, n;

	if (argc < 3) {
		fprintf(stderr, "usage: nfs-bench mkfiles|readset|hold URL ...\n");
		return 2;
	}
	nfs = connect_url(argv[2]);
	if (strcmp(argv[1], "mkfiles") == 0 && argc == 4) {
		n = atoi(argv[3]);
		memset(buf, 'x', 1024);
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof path, "f%05d", i);
			if (nfs_creat(nfs, path, 0644, &fh) != 0 ||
			    nfs_write(nfs, fh, 1024, buf) != 1024 ||
			    nfs_close(nfs, fh) != 0) {
				fprintf(stderr, "%s: %s\n", path, nfs_get_error(nfs));
				return 1;
			}
		}
	} else if (strcmp(argv[1], "readset") == 0) {
		for (i = 3; i < argc; i++) {
			if (nfs_open(nfs, argv[i], O_RDONLY, &fh) != 0) {
				fprintf(stderr, "%s: %s\n", argv[i], nfs_get_error(nfs));
				return 1;
			}
			for (;;) {
				n = nfs_read(nfs, fh, sizeof buf, buf);
				if (n < 0) {
					fprintf(stderr, "%s: %s\n", argv[i], nfs_get_error(nfs));
					return 1;
				}
				if (n == 0)
					break;
				total += n;
			}
			nfs_close(nfs, fh);
		}
		printf("%lld\n", total);
	} else if (strcmp(argv[1], "hold") == 0 && argc == 4) {
		struct nfs_stat_64 st;
		if (nfs_stat64(nfs, ".", &st) != 0) {
			fprintf(stderr, "stat: %s\n", nfs_get_error(nfs));
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		sleep(atoi(argv[3]));
	} else {
		fprintf(stderr, "nfs-bench: bad arguments\n");
		return 2;
	}
	nfs_destroy_context(nfs);
	return 0;
}
