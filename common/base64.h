/*
 * base64 - RFC 4648 base64, without line breaks: the one encoder behind
 * MIME bodies and encoded-words (templates/mime_enc) and SMTP AUTH.
 */
#ifndef VOLLEY_BASE64_H
#define VOLLEY_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* base64_len - the encoded length of n bytes */
static inline size_t base64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/*
 * base64_block - write the base64 of p[0..n), padded, at o (which must
 * have base64_len(n) bytes of room); returns the end of what was written.
 */
char *base64_block(char *o, const unsigned char *p, size_t n);

/* base64_encode - append the base64 of p[0..n) to out */
void base64_encode(struct buf *out, const void *p, size_t n);

/*
 * base64_valid - is p[0..n) base64 as RFC 4648 4 writes it: groups of
 * four from the alphabet, '=' padding only at the end (empty is valid)?
 */
bool base64_valid(const char *p, size_t n);

#endif
