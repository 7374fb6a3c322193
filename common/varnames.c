/*
 * varnames - which of the names a template uses some recipient has (see
 * varnames.h).
 *
 * A name is split at its dots once, into a bit per part; a member name
 * met at the root can satisfy a first part, one met deeper a first part
 * inside a section or any later part.  Names are few (tens), so a member
 * is compared with each missing name in turn, and only while some name
 * is missing: once all are found a recipient costs nothing.
 */
#include "varnames.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vars.h"
#include "xalloc.h"

/* A name with more parts than this has its later ones taken as found. */
#define VARNAMES_MAX_PARTS 32

/* Deeper than this, a (damaged or hostile) tree is not followed. */
#define VARNAMES_MAX_DEPTH 64

/* varnames_set - part bit of name i is found */
static void varnames_set(struct varnames *vn, size_t i, uint32_t bit)
{
	struct varnames_name *v = &vn->v[i];

	if (v->have == v->all || (v->have & bit))
		return;
	v->have |= bit;
	if (v->have == v->all)
		vn->missing--;
}

void varnames_add(struct varnames *vn, const char *name, size_t len,
		  bool in_section, bool section, const char *where)
{
	struct varnames_name *v;
	unsigned parts = 1;

	for (size_t i = 0; i < vn->n; i++) {
		if (vn->v[i].len == len && vn->v[i].in_section == in_section &&
		    memcmp(vn->v[i].name, name, len) == 0)
			return;
	}
	vn->v = xrealloc(vn->v, (vn->n + 1) * sizeof(*vn->v));
	v = &vn->v[vn->n++];
	memset(v, 0, sizeof(*v));
	v->name = xstrndup(name, len);
	v->len = len;
	v->in_section = in_section;
	v->section = section;
	v->where = xstrdup(where);
	for (size_t i = 0; i < len; i++)
		parts += name[i] == '.';
	if (parts > VARNAMES_MAX_PARTS)
		parts = VARNAMES_MAX_PARTS;
	v->all = parts == 32 ? UINT32_MAX : (UINT32_C(1) << parts) - 1;
	vn->missing++;
	/* "email": every recipient has it, but not "email.x" */
	if (vars_builtin(name, strcspn(v->name, ".")))
		varnames_set(vn, vn->n - 1, 1);
}

/*
 * varnames_member - a member name met at depth (0: the root): the parts
 * it can be
 */
static void varnames_member(struct varnames *vn, const char *m, size_t mlen,
			    unsigned depth, bool nocase)
{
	for (size_t i = 0; i < vn->n; i++) {
		struct varnames_name *v = &vn->v[i];
		const char *p = v->name, *end = v->name + v->len;
		unsigned k = 0;

		if (v->have == v->all)
			continue;
		while (k < VARNAMES_MAX_PARTS) {
			const char *dot = memchr(p, '.', (size_t)(end - p));
			size_t plen = (size_t)((dot ? dot : end) - p);
			bool may = k == 0 ? depth == 0 || v->in_section :
					    depth > 0;

			if (may && plen == mlen &&
			    (nocase ? strncasecmp(p, m, mlen) == 0 :
				      memcmp(p, m, mlen) == 0))
				varnames_set(vn, i, UINT32_C(1) << k);
			if (dot == NULL)
				break;
			p = dot + 1;
			k++;
		}
	}
}

void varnames_root(struct varnames *vn, const char *name, size_t len,
		   bool nocase)
{
	if (!varnames_done(vn))
		varnames_member(vn, name, len, 0, nocase);
}

void varnames_columns(struct varnames *vn, const void *names, size_t len)
{
	struct vars_iter it;
	const char *p;
	size_t plen;

	if (varnames_done(vn) || vars_iter_init(&it, names, len) < 0)
		return;
	while (vars_next(&it, &p, &plen) == 1)
		varnames_member(vn, p, plen, 0, false);
}

/* varnames_value - the members of v and everything in it, at depth */
static void varnames_value(struct varnames *vn, const struct vars_value *v,
			   unsigned depth)
{
	const unsigned char *pos = v->body;
	struct vars_value item;
	const char *name;
	size_t nlen;

	if (depth > VARNAMES_MAX_DEPTH || varnames_done(vn))
		return;
	if (v->tag == VARS_LIST) {
		while (vars_value_next(&pos, v->end, &item))
			varnames_value(vn, &item, depth + 1);
	} else if (v->tag == VARS_OBJECT) {
		while (vars_member_next(&pos, v->end, &name, &nlen, &item)) {
			varnames_member(vn, name, nlen, depth, false);
			varnames_value(vn, &item, depth + 1);
		}
	}
}

void varnames_recipient(struct varnames *vn, const void *vars, size_t len)
{
	struct vars_value root;

	if (varnames_done(vn) || len == 0 ||
	    *(const unsigned char *)vars != VARS_FORMAT_TREE ||
	    vars_tree_root(vars, len, &root) < 0)
		return;
	varnames_value(vn, &root, 0);
}

void varnames_free(struct varnames *vn)
{
	for (size_t i = 0; i < vn->n; i++) {
		free(vn->v[i].name);
		free(vn->v[i].where);
	}
	free(vn->v);
	memset(vn, 0, sizeof(*vn));
}
