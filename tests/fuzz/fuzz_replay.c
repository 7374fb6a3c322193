/*
 * fuzz_replay - a main() for a libFuzzer target built without libFuzzer
 * (gcc, the normal and sanitizer builds): it runs the target's
 * LLVMFuzzerTestOneInput once on each file named, or on each file in a
 * folder named, so that the inputs that once crashed it (and a few
 * chosen to be nasty) stay in the test suite.  A target reports a broken
 * promise by aborting, which fails the test.
 *
 *	fuzz_csv_replay tests/fuzz/regressions/fuzz_csv
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* run_file - one input; returns 0, or -1 if it cannot be read */
static int run_file(const char *path)
{
	struct buf in = BUF_INIT;
	char chunk[65536];
	FILE *f = fopen(path, "rb");
	uint8_t *copy;
	size_t n;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&in, chunk, n);
	if (ferror(f)) {
		perror(path);
		fclose(f);
		buf_free(&in);
		return -1;
	}
	fclose(f);
	/* exactly as long as the input, so ASan sees a read past its end */
	copy = malloc(in.len > 0 ? in.len : 1);
	if (copy == NULL)
		abort();
	if (in.len > 0)
		memcpy(copy, in.data, in.len);
	LLVMFuzzerTestOneInput(copy, in.len);
	free(copy);
	buf_free(&in);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* run_dir - every file in a folder, in name order; the count or -1 */
static int run_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, by_name), ran = 0;

	if (n < 0) {
		perror(dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				ran = -1;
			else if (ran >= 0)
				ran++;
		}
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	int total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) :
		    run_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	/* an empty folder would pass without testing anything */
	if (total == 0) {
		fprintf(stderr, "%s: no inputs\n", argv[0]);
		return 1;
	}
	printf("%s: %d inputs, no broken promise\n", argv[0], total);
	return 0;
}
