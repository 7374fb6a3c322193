/*
 * csv - a strict, streaming RFC 4180 reader.
 *
 * Reads records from any byte source (a file descriptor, or a callback for
 * tests) through one reusable buffer.  A record is returned as fields that
 * point into the reader's buffers: no allocation per record, and the
 * pointers stay valid only until the next csv_read() call.
 *
 * Accepted: fields separated by ',', records ended by CRLF or LF (the last
 * record may lack a terminator), fields quoted with '"' that may contain
 * commas, CR, LF and doubled quotes, and a UTF-8 byte order mark at the very
 * start of the input (skipped).  Lines that are completely empty are
 * skipped (and counted for line numbers).
 *
 * Refused, each as a bad record with its line, column and a reason:
 *   - a field count different from the first record's (the header);
 *   - a quote inside an unquoted field ('ab"c');
 *   - anything but a separator or line end after a closing quote ('"ab"c');
 *   - a CR that is not followed by LF outside quotes (bare CR);
 *   - a NUL byte anywhere;
 *   - bytes that are not well-formed UTF-8 (overlongs, surrogates, values
 *     above U+10FFFF and truncated sequences included);
 *   - a record longer than max_record_bytes (its raw text is then only its
 *     first 1 KiB, or max_record_bytes if less, and the reason gives its
 *     length and lines: the reader never holds more than the limit).
 * After a bad record the reader resynchronises at the next line end outside
 * quotes (a quote opens a quoted field only at the start of a field), so
 * every bad record of a file can be reported in one pass.
 *
 * Fatal, where the reader cannot go on:
 *   - a quoted field still open at the end of the input (unterminated
 *     quote): every line after the quote is inside the field, so no
 *     record after it can be told apart.  The error points at the opening
 *     quote and says how many lines the field took;
 *   - a read error.
 */
#ifndef VOLLEY_CSV_H
#define VOLLEY_CSV_H

#include <stddef.h>
#include <sys/types.h>

struct csv_reader;

/* Returns bytes read (> 0), 0 at end of input, -1 on error (errno set). */
typedef ssize_t csv_read_fn(void *ctx, void *dst, size_t len);

struct csv_params {
	size_t max_record_bytes;	/* 0: default, 1 MiB */
	size_t max_fields;		/* 0: default, 4096 */
	size_t read_size;		/* bytes per read call; 0: 64 KiB */
};

struct csv_field {
	const char *ptr;	/* unescaped bytes, not NUL-terminated */
	size_t len;
};

struct csv_record {
	const struct csv_field *fields;
	size_t nfields;
	unsigned long line;	/* 1-based physical line the record starts on */
	const char *raw;	/* the record's exact input bytes ... */
	size_t raw_len;		/* ... without its line terminator */
};

struct csv_error {
	unsigned long line;	/* 1-based physical line of the fault */
	unsigned long column;	/* 1-based byte column within that line */
	char reason[256];	/* e.g. "expected 5 fields, found 4" */
};

enum csv_status {
	CSV_FATAL = -2,		/* error filled; every later call returns this */
	CSV_BAD_RECORD = -1,	/* error filled; record holds line and raw */
	CSV_EOF = 0,
	CSV_OK = 1,		/* record filled */
};

/* csv_reader_new - read through fn(ctx, ...); params may be NULL */
struct csv_reader *csv_reader_new(csv_read_fn *fn, void *ctx,
				  const struct csv_params *params);
/* csv_reader_new_fd - read from fd (not closed by the reader) */
struct csv_reader *csv_reader_new_fd(int fd, const struct csv_params *params);
void csv_reader_free(struct csv_reader **rp);

/*
 * csv_read - the next record.
 *
 * On CSV_OK, rec describes the record.  On CSV_BAD_RECORD, rec->line,
 * rec->raw and rec->raw_len describe the skipped record (fields are not
 * usable; raw is only a prefix of a record over the limit) and err says
 * why.  On CSV_FATAL, err says why and nothing more will be read.
 */
enum csv_status csv_read(struct csv_reader *r, struct csv_record *rec,
			 struct csv_error *err);

/* csv_write_field - append one field to out, quoted only if it must be */
struct buf;
void csv_write_field(struct buf *out, const char *p, size_t len);

#endif
