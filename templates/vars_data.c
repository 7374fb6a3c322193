/*
 * vars_data - a recipient's stored variables as template data (see
 * vars_data.h).
 *
 * The renderer holds on to values while it looks deeper (its context
 * stack), so a list or object handed to it must stay valid: its ref is the
 * container's tag byte inside the blob, which is decoded again when used.
 */
#include "vars_data.h"

#include <string.h>
#include <strings.h>

/* The root of a flat blob is no vars_value; this address marks it. */
static const char vars_data_flat_root;

/* vars_data_decode - the value whose tag byte is at */
static bool vars_data_decode(const struct vars_data *vd,
			     const unsigned char *at, struct vars_value *v)
{
	const unsigned char *end = (const unsigned char *)vd->vars +
				   vd->vars_len;

	return vars_value_next(&at, end, v);
}

/* vars_data_value - a vars_value as the renderer's tmpl_value */
static void vars_data_value(const struct vars_value *v,
			    struct tmpl_value *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->tag) {
	case VARS_NULL:
		out->kind = TMPL_NULL;
		break;
	case VARS_FALSE:
	case VARS_TRUE:
		out->kind = TMPL_BOOL;
		out->boolean = v->tag == VARS_TRUE;
		break;
	case VARS_STRING:
	case VARS_NUMBER:
		out->kind = v->tag == VARS_STRING ? TMPL_STRING : TMPL_NUMBER;
		out->str = v->str;
		out->len = v->len;
		break;
	case VARS_LIST:
	case VARS_OBJECT:
		out->kind = v->tag == VARS_LIST ? TMPL_LIST : TMPL_OBJECT;
		out->ref = v->at;
		break;
	}
}

static void vars_data_string(const char *p, size_t len,
			     struct tmpl_value *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = TMPL_STRING;
	out->str = p;
	out->len = len;
}

/*
 * vars_data_is_address_name - the names under which a recipient's address
 * is a variable: the import's address column (ignoring ASCII case) and
 * "email".  The stored address (checked and trimmed at import) is what
 * they give, whatever the row said.
 */
static bool vars_data_is_address_name(const struct vars_data *vd,
				      const char *name, size_t len)
{
	return (strlen(vd->address_column) == len &&
		strncasecmp(vd->address_column, name, len) == 0) ||
	       (len == sizeof(VARS_ADDRESS_NAME) - 1 &&
		memcmp(name, VARS_ADDRESS_NAME,
		       sizeof(VARS_ADDRESS_NAME) - 1) == 0);
}

/* vars_data_flat_decode - fill vd->flat from the row; false if too wide */
static bool vars_data_flat_decode(struct vars_data *vd)
{
	struct vars_iter names, values;
	int n = 0;

	if (vars_iter_init(&names, vd->names, vd->names_len) < 0 ||
	    vars_iter_init(&values, vd->vars, vd->vars_len) < 0) {
		vd->nflat = 0;
		return true;
	}
	while (n < VARS_DATA_FLAT_CACHE &&
	       vars_next(&names, &vd->flat[n].name,
			 &vd->flat[n].name_len) == 1) {
		if (vars_next(&values, &vd->flat[n].value,
			      &vd->flat[n].value_len) != 1)
			break;
		n++;
	}
	if (n == VARS_DATA_FLAT_CACHE && names.pos != names.end) {
		vd->nflat = -2;
		return false;
	}
	vd->nflat = n;
	return true;
}

/*
 * vars_data_flat_get - a CSV variable.  Rows have a handful of columns,
 * so a linear search of the decoded names beats any index.
 */
static bool vars_data_flat_get(struct vars_data *vd, const char *name,
			       size_t len, struct tmpl_value *out)
{
	struct vars_iter names, values;
	const char *n, *v;
	size_t nlen, vlen;

	if (vd->nflat == -1)
		vars_data_flat_decode(vd);
	for (int i = 0; i < vd->nflat; i++) {
		if (vd->flat[i].name_len == len && len > 0 &&
		    vd->flat[i].name[0] == name[0] &&
		    memcmp(vd->flat[i].name, name, len) == 0) {
			vars_data_string(vd->flat[i].value,
					 vd->flat[i].value_len, out);
			return true;
		}
	}
	if (vd->nflat == -2 &&
	    vars_iter_init(&names, vd->names, vd->names_len) == 0 &&
	    vars_iter_init(&values, vd->vars, vd->vars_len) == 0) {
		while (vars_next(&names, &n, &nlen) == 1 &&
		       vars_next(&values, &v, &vlen) == 1) {
			if (nlen == len && memcmp(n, name, len) == 0) {
				vars_data_string(v, vlen, out);
				return true;
			}
		}
	}
	if (vars_data_is_address_name(vd, name, len)) {
		vars_data_string(vd->address, vd->address_len, out);
		return true;
	}
	return false;
}

/* vars_data_is_unsubscribe_url - the built-in {{unsubscribe_url}}, given */
static bool vars_data_is_unsubscribe_url(const struct vars_data *vd,
					 const char *name, size_t len)
{
	return vd->unsubscribe_url != NULL &&
	       len == sizeof(VARS_UNSUBSCRIBE_URL_NAME) - 1 &&
	       memcmp(name, VARS_UNSUBSCRIBE_URL_NAME, len) == 0;
}

static bool vars_data_get(const struct tmpl_data *d,
			  const struct tmpl_value *obj, const char *name,
			  size_t len, struct tmpl_value *out)
{
	struct vars_data *vd = d->ctx;
	struct vars_value o, v;

	if ((obj->ref == &vars_data_flat_root ||
	     obj->ref == vd->tree_root.at) &&
	    vars_data_is_unsubscribe_url(vd, name, len)) {
		vars_data_string(vd->unsubscribe_url, vd->unsubscribe_url_len,
				 out);
		return true;
	}
	if (obj->ref == &vars_data_flat_root)
		return vars_data_flat_get(vd, name, len, out);
	if (obj->ref == vd->tree_root.at &&
	    vars_data_is_address_name(vd, name, len)) {
		vars_data_string(vd->address, vd->address_len, out);
		return true;
	}
	if (obj->kind != TMPL_OBJECT || !vars_data_decode(vd, obj->ref, &o) ||
	    !vars_object_get(&o, name, len, &v))
		return false;
	vars_data_value(&v, out);
	return true;
}

static size_t vars_data_list_len(const struct tmpl_data *d,
				 const struct tmpl_value *list)
{
	const struct vars_data *vd = d->ctx;
	struct vars_value v;

	if (!vars_data_decode(vd, list->ref, &v) || v.tag != VARS_LIST)
		return 0;
	return v.count;
}

/*
 * vars_data_list_item - item i of a list.  Sections ask for items 0, 1,
 * 2 ... in turn, so the position after the last item read is kept and the
 * walk costs O(1) per item; any other order starts from the list's head.
 */
static void vars_data_list_item(const struct tmpl_data *d,
				const struct tmpl_value *list, size_t i,
				struct tmpl_value *out)
{
	struct vars_data *vd = d->ctx;
	const unsigned char *pos;
	struct vars_value l, v;
	size_t k;

	memset(out, 0, sizeof(*out));
	out->kind = TMPL_MISSING;
	if (!vars_data_decode(vd, list->ref, &l) || l.tag != VARS_LIST ||
	    i >= l.count)
		return;
	if (vd->list_body == l.body && vd->list_index == i) {
		pos = vd->list_pos;
		k = i;
	} else {
		pos = l.body;
		k = 0;
	}
	for (; k <= i; k++) {
		if (!vars_value_next(&pos, l.end, &v))
			return;
	}
	vd->list_body = l.body;
	vd->list_index = i + 1;
	vd->list_pos = pos;
	vars_data_value(&v, out);
}

int vars_data_init(struct vars_data *vd, const void *names,
		   size_t names_len, const char *address_column,
		   const char *address, size_t address_len, const void *vars,
		   size_t vars_len)
{
	/* Not a memset: the flat cache is filled only when needed. */
	memset(&vd->data, 0, sizeof(vd->data));
	vd->nflat = -1;
	vd->list_body = NULL;
	vd->list_pos = NULL;
	vd->list_index = 0;
	vd->names = names;
	vd->names_len = names_len;
	vd->address_column = address_column ? address_column : "email";
	vd->address = address;
	vd->address_len = address_len;
	vd->vars = vars;
	vd->vars_len = vars_len;
	vd->unsubscribe_url = NULL;
	vd->unsubscribe_url_len = 0;
	vd->data.get = vars_data_get;
	vd->data.list_len = vars_data_list_len;
	vd->data.list_item = vars_data_list_item;
	vd->data.ctx = vd;
	if (vars_len > 0 && *(const unsigned char *)vars == VARS_FORMAT_FLAT) {
		vd->data.root.kind = TMPL_OBJECT;
		vd->data.root.ref = &vars_data_flat_root;
		return 0;
	}
	if (vars_tree_root(vars, vars_len, &vd->tree_root) < 0 ||
	    vd->tree_root.tag != VARS_OBJECT)
		return -1;
	vars_data_value(&vd->tree_root, &vd->data.root);
	return 0;
}

void vars_data_set_unsubscribe_url(struct vars_data *vd, const char *url,
				   size_t len)
{
	vd->unsubscribe_url = url;
	vd->unsubscribe_url_len = len;
}
