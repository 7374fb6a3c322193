/*
 * bounce_rules - what a bounce (or a reply at send time) means: one of
 * the categories PowerMTA and KumoMTA users know, and whether it is hard
 * (suppress at once) or soft (suppress after repeats).
 *
 * The rules are text, one per line, first match wins (docs/bounces.md):
 *
 *   # comment
 *   hard bad-mailbox bad-domain          categories that are hard
 *   soft other                           ... or soft (the default)
 *   bad-mailbox status 5.1.1
 *   quota-issues text "mailbox full"
 *   spam-related status 5.7.* text "spamhaus"   (every condition holds)
 *   transient-failure code 4*
 *
 * Conditions: `status PATTERN` (the enhanced code, whole, "5.1.*"),
 * `code PATTERN` (the three-digit reply code, whole, "55?", "4*"),
 * `text "PATTERN"` (anywhere in the reply text).  All ignore case;
 * '*' is any run of characters and '?' one.  No regular expressions: the
 * matcher is the two-pointer glob (one backtracking point), O(pattern x
 * text) at worst, so no rule and no reply can make it blow up.
 *
 * A default set is compiled in (engine/bounce/default.rules); a rules
 * file replaces it whole.  Loaded rules are read-only: any number of
 * threads may classify with one set at once.
 */
#ifndef VOLLEY_BOUNCE_RULES_H
#define VOLLEY_BOUNCE_RULES_H

#include <stdbool.h>
#include <stddef.h>

enum bounce_category {
	BOUNCE_CAT_OTHER,
	BOUNCE_CAT_BAD_MAILBOX,
	BOUNCE_CAT_BAD_DOMAIN,
	BOUNCE_CAT_INACTIVE_MAILBOX,
	BOUNCE_CAT_QUOTA_ISSUES,
	BOUNCE_CAT_POLICY_RELATED,
	BOUNCE_CAT_SPAM_RELATED,
	BOUNCE_CAT_CONTENT_RELATED,
	BOUNCE_CAT_ROUTING_ERRORS,
	BOUNCE_CAT_PROTOCOL_ERRORS,
	BOUNCE_CAT_TRANSIENT_FAILURE,
	BOUNCE_CAT_MESSAGE_EXPIRED,
	BOUNCE_CAT_INVALID_SENDER,
	BOUNCE_CAT_COUNT
};

/* bounce_category_name - "bad-mailbox" ... */
const char *bounce_category_name(enum bounce_category c);

/* bounce_category_parse - the category named name; -1 if none */
int bounce_category_parse(const char *name, size_t len);

struct bounce_class {
	enum bounce_category category;
	bool hard;
	int line;		/* the rule that matched; 0: none did */
};

struct bounce_rules;

/* The text of engine/bounce/default.rules, NUL ended. */
extern const char bounce_rules_default_text[];

/*
 * bounce_rules_load - rules from text[0..len), name for messages; NULL
 * on an error, with *error_r "NAME:LINE: what is wrong".
 */
struct bounce_rules *bounce_rules_load(const char *text, size_t len,
				       const char *name,
				       const char **error_r);

/* bounce_rules_load_file - the same from a file (errors: PATH:LINE) */
struct bounce_rules *bounce_rules_load_file(const char *path,
					    const char **error_r);

/* bounce_rules_default - the compiled-in rules (NULL only if broken) */
struct bounce_rules *bounce_rules_default(const char **error_r);

void bounce_rules_free(struct bounce_rules *rules);

/* bounce_rules_count - how many rules (not hard/soft lines) */
size_t bounce_rules_count(const struct bounce_rules *rules);

/*
 * bounce_rules_classify - the class of a reply: code is the SMTP reply
 * code (0 when unknown), enhanced "5.1.1" (NULL or "" when none), text
 * the reply's text (NULL or "" when none).  Nothing matching is
 * BOUNCE_CAT_OTHER with line 0.
 */
void bounce_rules_classify(const struct bounce_rules *rules, int code,
			   const char *enhanced, const char *text,
			   struct bounce_class *out);

/* bounce_glob - does s match the glob pattern (ignoring case)? */
bool bounce_glob(const char *pattern, const char *s, size_t len);

#endif
