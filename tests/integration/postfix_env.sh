#!/bin/sh
# postfix_env.sh - a private Postfix + Dovecot (SASL only) on loopback for
# volley's integration tests.  Everything lives in one fresh temp folder:
# Postfix's config, queue and data directories, Dovecot's config and
# sockets, the TLS CA and server certificate, the log files and the
# Maildirs.  Nothing in /etc/postfix, /etc/dovecot or /var is used or
# changed, and no system Postfix or Dovecot needs to be running.  Needs
# root (Postfix's master and Dovecot's master run as root, as in
# production), the Debian packages postfix, dovecot-core and openssl.
#
# Sourced (POSIX sh):
#   . tests/integration/postfix_env.sh
#   postfix_env_start || exit 1     # sets and exports the variables below
#   trap postfix_env_stop EXIT      # kills only what start started
#   postfix_env_logs                # tail of both logs (on failure)
#
# By hand, for debugging:
#   eval "$(sh tests/integration/postfix_env.sh start)"
#   swaks --server 127.0.0.1:$POSTFIX_PORT -tls --tls-verify \
#         --tls-ca-path "$POSTFIX_CA" --auth PLAIN --auth-user "$POSTFIX_USER" \
#         --auth-password "$POSTFIX_PASSWORD" --to alice@example.test
#   sh tests/integration/postfix_env.sh stop "$POSTFIX_ENV_DIR"
#
# Exported after start:
#   POSTFIX_ENV_DIR       the temp folder (removed by stop)
#   POSTFIX_PORT          smtpd on 127.0.0.1:POSTFIX_PORT (STARTTLS, AUTH)
#   POSTFIX_SMTPS_PORT    the same with implicit TLS (like port 465) and
#                         without CHUNKING, so clients use DATA there
#   POSTFIX_LIMIT_PORT    like POSTFIX_PORT, but taking two recipients
#                         per transaction (smtpd_recipient_limit = 2:
#                         "452 4.5.3 Error: too many recipients")
#   POSTFIX_CA            the CA that signed the server certificate, whose
#                         names are DNS:localhost and IP:127.0.0.1
#   POSTFIX_MAILDIR_ROOT  USER@example.test's mail is delivered to
#                         $POSTFIX_MAILDIR_ROOT/USER/Maildir/new/
#   POSTFIX_USER          SASL user (alice@example.test)
#   POSTFIX_PASSWORD      its password (random per run)
#   POSTFIX_LOG           Postfix's log file (maillog_file)
#   DOVECOT_LOG           Dovecot's log file
#
# What the server does:
#   alice@, bob@, carol@example.test  accepted and delivered to Maildirs
#   other@example.test                550 5.1.1 at RCPT (unknown user)
#   defer@example.test                451 4.3.0 at RCPT (always)
#   any other domain                  554 5.7.1 without AUTH; accepted
#                                     after AUTH but never delivered
#                                     (default_transport = error)
#   AUTH                              offered only after STARTTLS

# postfix_env_fail MESSAGE - say why start failed, with the logs
postfix_env_fail() {
	echo "postfix_env: $*" >&2
	postfix_env_logs >&2
	postfix_env_stop
	return 1
}

# postfix_env_logs - the tail of Postfix's and Dovecot's logs
postfix_env_logs() {
	for pfe_f in "${POSTFIX_LOG:-}" "${DOVECOT_LOG:-}"; do
		[ -n "$pfe_f" ] && [ -s "$pfe_f" ] || continue
		echo "--- last lines of $pfe_f"
		tail -n 40 "$pfe_f"
	done
}

# postfix_env_free_port - a TCP port on loopback that no socket uses now
# (random in 20000-31999, below Linux's ephemeral range; start() tries
# again if someone takes it before the master binds it)
postfix_env_free_port() {
	while :; do
		pfe_n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		pfe_port=$((20000 + pfe_n % 12000))
		pfe_hex=$(printf ':%04X' "$pfe_port")
		cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
			awk -v p="$pfe_hex" '$2 ~ p"$" { f = 1 } END { exit !f }' ||
			break
	done
	echo "$pfe_port"
}

# postfix_env_ready PORT [starttls] - wait up to 10 s until a TLS session
# (STARTTLS after a 220 greeting, or implicit TLS) on 127.0.0.1:PORT
# verifies with $POSTFIX_CA for "localhost"
postfix_env_ready() {
	pfe_i=0
	while :; do
		pfe_out=$(printf 'QUIT\r\n' | openssl s_client -brief \
			${2:+-starttls smtp} -connect "127.0.0.1:$1" \
			-CAfile "$POSTFIX_CA" -verify_return_error \
			-verify_hostname localhost 2>&1) &&
			case $pfe_out in *"Verification: OK"*) return 0;; esac
		pfe_i=$((pfe_i + 1))
		if [ $pfe_i -ge 100 ]; then
			echo "no TLS session with 127.0.0.1:$1 within 10 s:"
			echo "$pfe_out"
			return 1
		fi
		sleep 0.1
	done
}

# postfix_env_pid_is PIDFILE NAME - print the pid in PIDFILE if that
# process is alive (not a zombie) and its command name is NAME
postfix_env_pid_is() {
	[ -f "$1" ] || return 1
	pfe_pid=$(head -n 1 "$1" | tr -dc 0-9)
	[ -n "$pfe_pid" ] && postfix_env_alive "$pfe_pid" || return 1
	[ "$(cat "/proc/$pfe_pid/comm" 2>/dev/null)" = "$2" ] || return 1
	echo "$pfe_pid"
}

# postfix_env_alive PID - the process exists and is not a zombie (in a
# container the reaper of orphans may take its time)
postfix_env_alive() {
	pfe_state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$pfe_state" ] && [ "$pfe_state" != Z ]
}

# postfix_env_term PIDFILE NAME [group] - SIGTERM that process (or its
# process group) if it is ours; print its pid
postfix_env_term() {
	pfe_kpid=$(postfix_env_pid_is "$1" "$2") || return 0
	if [ -n "${3:-}" ]; then
		kill -TERM "-$pfe_kpid" 2>/dev/null
	else
		kill -TERM "$pfe_kpid" 2>/dev/null
	fi
	echo "$pfe_kpid"
}

# postfix_env_reap PID NAME - wait up to 5 s for PID to end, then SIGKILL
# its process group (the Postfix and Dovecot masters are group leaders)
postfix_env_reap() {
	[ -n "$1" ] || return 0
	pfe_i=0
	while [ $pfe_i -lt 50 ] && postfix_env_alive "$1"; do
		sleep 0.05; pfe_i=$((pfe_i + 1))
	done
	if postfix_env_alive "$1"; then
		echo "postfix_env: $2 ($1) did not stop, killing it" >&2
		kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
	fi
	return 0
}

# postfix_env_stop [DIR] - stop what postfix_env_start started (and only
# that), then remove the folder.  Safe to call twice, or after a failed
# start.
postfix_env_stop() {
	pfe_dir=${1:-${POSTFIX_ENV_DIR:-}}
	[ -n "$pfe_dir" ] && [ -f "$pfe_dir/.volley-postfix-env" ] || return 0
	# SIGTERM to Postfix's master (pid in queue/pid/master.pid) makes it
	# stop its children: what `postfix stop` does, without its 1 s polls.
	# Dovecot's master (base_dir/master.pid) takes 1 s to stop when told
	# alone, so its whole process group (setsid: only its own children)
	# is told at once.
	pfe_ppid=$(postfix_env_term "$pfe_dir/queue/pid/master.pid" master)
	pfe_dpid=$(postfix_env_term "$pfe_dir/dovecot/run/master.pid" dovecot \
		group)
	postfix_env_reap "$pfe_ppid" "postfix master"
	postfix_env_reap "$pfe_dpid" dovecot
	rm -rf "$pfe_dir"
	[ "$pfe_dir" = "${POSTFIX_ENV_DIR:-}" ] && POSTFIX_ENV_DIR=
	return 0
}

# postfix_env_certs DIR - a CA and a server certificate it signed for
# localhost / 127.0.0.1 (ECDSA P-256: instant to generate)
postfix_env_certs() {
	(
	cd "$1" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -keyout ca.key -out ca.pem -days 2 \
		-subj "/CN=volley test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" &&
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -keyout server.key -out server.csr \
		-subj "/CN=localhost" &&
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=DNS:localhost,IP:127.0.0.1" > server.ext &&
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		-CAcreateserial -out server.pem -days 2 -extfile server.ext
	) >"$1/openssl.log" 2>&1 || {
		cat "$1/openssl.log" >&2
		return 1
	}
	chmod 600 "$1/server.key" "$1/ca.key"
}

# postfix_env_master_cf FILE - Postfix's services: smtpd on three
# loopback ports (the second one with implicit TLS and no CHUNKING, so
# that DATA and dot-stuffing get used there; the third with a recipient
# limit); no chroot (the queue is in a temp dir), no smtp/lmtp client and
# no local delivery
postfix_env_master_cf() {
	cat > "$1" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
127.0.0.1:$POSTFIX_SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_discard_ehlo_keywords=chunking
127.0.0.1:$POSTFIX_LIMIT_PORT inet n - n - - smtpd
  -o smtpd_recipient_limit=2
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	touch -d "1 hour ago" "$1"
}

# postfix_env_start - create, start and wait for the servers; export the
# variables listed at the top
postfix_env_start() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "postfix_env: needs root (Postfix's and Dovecot's masters)" >&2
		return 1
	fi
	for pfe_cmd in postfix postconf dovecot openssl; do
		command -v "$pfe_cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
		command -v "$pfe_cmd" >/dev/null 2>&1 || {
			echo "postfix_env: '$pfe_cmd' not found" \
			     "(run scripts/install-deps --tests)" >&2
			return 1
		}
	done

	pfe_d=$(mktemp -d "${TMPDIR:-/tmp}/volley-postfix-XXXXXX") || return 1
	# The virtual delivery agent runs as $pfe_uid and opens the Maildir by
	# its absolute path, so every folder on the way must be searchable.
	chmod 755 "$pfe_d"
	touch "$pfe_d/.volley-postfix-env"
	POSTFIX_ENV_DIR=$pfe_d
	POSTFIX_LOG=$pfe_d/maillog
	DOVECOT_LOG=$pfe_d/dovecot.log
	POSTFIX_USER=alice@example.test
	POSTFIX_PASSWORD="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-Zq"
	POSTFIX_CA=$pfe_d/tls/ca.pem
	POSTFIX_MAILDIR_ROOT=$pfe_d/mail
	export POSTFIX_ENV_DIR POSTFIX_LOG DOVECOT_LOG POSTFIX_USER \
		POSTFIX_PASSWORD POSTFIX_CA POSTFIX_MAILDIR_ROOT

	pfe_uid=65534 # nobody:nogroup owns the Maildirs
	mkdir -p "$pfe_d/etc" "$pfe_d/tls" "$pfe_d/data" \
		"$pfe_d/queue/private" \
		"$pfe_d/dovecot/run" "$pfe_d/dovecot/state" "$pfe_d/mail" ||
		{ postfix_env_fail "cannot create folders in $pfe_d"; return 1; }
	chown postfix "$pfe_d/queue/private" "$pfe_d/data"
	chmod 700 "$pfe_d/queue/private"
	for pfe_u in alice bob carol defer; do
		mkdir -p "$pfe_d/mail/$pfe_u/Maildir/new" \
			"$pfe_d/mail/$pfe_u/Maildir/cur" \
			"$pfe_d/mail/$pfe_u/Maildir/tmp"
	done
	chown -R "$pfe_uid:$pfe_uid" "$pfe_d/mail"

	postfix_env_certs "$pfe_d/tls" ||
		{ postfix_env_fail "cannot create the certificates"; return 1; }

	# --- Dovecot: auth service only, a passwd-file with one user -------
	printf '%s:{PLAIN}%s::::::\n' "$POSTFIX_USER" "$POSTFIX_PASSWORD" \
		> "$pfe_d/dovecot/users"
	chown root:dovecot "$pfe_d/dovecot/users"
	chmod 640 "$pfe_d/dovecot/users"
	cat > "$pfe_d/dovecot/dovecot.conf" <<EOF
# private Dovecot for volley's tests: SASL for Postfix and nothing else
base_dir = $pfe_d/dovecot/run
state_dir = $pfe_d/dovecot/state
instance_name = volley-test-${pfe_d##*-}
protocols =
ssl = no
log_path = $DOVECOT_LOG
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
# Postfix only offers AUTH after STARTTLS (smtpd_tls_auth_only).
disable_plaintext_auth = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $pfe_d/dovecot/users
}
userdb {
  driver = static
  args = uid=$pfe_uid gid=$pfe_uid home=/nonexistent
}
# No auth penalty: tests fail a login on purpose, and Dovecot would then
# delay every later AUTH from 127.0.0.1 by 2 s and more.  Without this
# socket the auth process finds no anvil to ask and skips the penalty.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener $pfe_d/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
	dovecot -c "$pfe_d/dovecot/dovecot.conf" >"$pfe_d/dovecot.out" 2>&1 || {
		cat "$pfe_d/dovecot.out" >&2
		postfix_env_fail "dovecot did not start"
		return 1
	}
	pfe_i=0
	while [ ! -S "$pfe_d/queue/private/auth" ] && [ $pfe_i -lt 100 ]; do
		sleep 0.05; pfe_i=$((pfe_i + 1))
	done
	[ -S "$pfe_d/queue/private/auth" ] || {
		postfix_env_fail "no Dovecot auth socket after 5 s"
		return 1
	}

	# --- Postfix ------------------------------------------------------
	printf '%s\n' \
		"alice@example.test alice/Maildir/" \
		"bob@example.test bob/Maildir/" \
		"carol@example.test carol/Maildir/" \
		"defer@example.test defer/Maildir/" > "$pfe_d/etc/vmailbox"
	printf '%s\n' \
		"defer@example.test 451 4.3.0 Deferred by the test server" \
		> "$pfe_d/etc/recipient_access"
	cat > "$pfe_d/etc/main.cf" <<EOF
# private Postfix for volley's tests (see tests/integration/postfix_env.sh)
compatibility_level = 3.6
queue_directory = $pfe_d/queue
data_directory = $pfe_d/data
meta_directory = $(postconf -dh meta_directory)
mail_owner = postfix
maillog_file = $POSTFIX_LOG
maillog_file_prefixes = $pfe_d

myhostname = mx.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
biff = no

# Never look anything up, never deliver anywhere but the Maildirs.
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
relayhost =
default_transport = error:5.3.0 no outgoing mail from the test server
relay_transport = \$default_transport
local_transport = error:5.1.1 no local delivery on the test server

# Keep volley's headers exactly as sent (no added Date, Message-ID, ...;
# no address rewriting), so delivered bytes can be compared.
local_header_rewrite_clients =

# Fast failures: no tarpit after errors.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100

smtpd_banner = \$myhostname ESMTP volley test server
smtpd_tls_chain_files = $pfe_d/tls/server.key, $pfe_d/tls/server.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous

# Relaying needs AUTH (mynetworks is not trusted); example.test is ours.
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
    check_recipient_access texthash:$pfe_d/etc/recipient_access,
    permit_sasl_authenticated, reject_unauth_destination

virtual_mailbox_domains = example.test
virtual_mailbox_base = $pfe_d/mail
virtual_mailbox_maps = texthash:$pfe_d/etc/vmailbox
virtual_uid_maps = static:$pfe_uid
virtual_gid_maps = static:$pfe_uid
EOF
	# Postfix waits until a config or map file is 2 s old before reading
	# it (in case it is being edited): make them older.
	touch -d "1 hour ago" "$pfe_d/etc/"*
	# Three free ports; if another program takes one before the master
	# binds it, try again with others.
	pfe_try=1
	while :; do
		POSTFIX_PORT=$(postfix_env_free_port) || return 1
		POSTFIX_SMTPS_PORT=$(postfix_env_free_port) || return 1
		POSTFIX_LIMIT_PORT=$(postfix_env_free_port) || return 1
		[ "$POSTFIX_SMTPS_PORT" != "$POSTFIX_PORT" ] &&
		[ "$POSTFIX_LIMIT_PORT" != "$POSTFIX_PORT" ] &&
		[ "$POSTFIX_LIMIT_PORT" != "$POSTFIX_SMTPS_PORT" ] || continue
		export POSTFIX_PORT POSTFIX_SMTPS_PORT POSTFIX_LIMIT_PORT
		postfix_env_master_cf "$pfe_d/etc/master.cf"
		# `postfix start` checks the instance (creating the queue
		# folders with the right owners) and returns once the master
		# has started.
		postfix -c "$pfe_d/etc" start >"$pfe_d/postfix.out" 2>&1 && break
		if [ $pfe_try -lt 3 ] &&
		   grep -q "Address already in use" "$POSTFIX_LOG" 2>/dev/null; then
			pfe_try=$((pfe_try + 1))
			continue
		fi
		cat "$pfe_d/postfix.out" >&2
		postfix_env_fail "postfix -c $pfe_d/etc start failed"
		return 1
	done
	pfe_msg=$(postfix_env_ready "$POSTFIX_PORT" starttls &&
		postfix_env_ready "$POSTFIX_SMTPS_PORT") || {
		postfix_env_fail "$pfe_msg"
		return 1
	}
	# (The implicit-TLS port is up once the plain one is: same master.)
	return 0
}

# Run as a command: start prints the variables for eval; stop DIR.
case ${0##*/} in
postfix_env.sh)
	set -u
	case ${1:-} in
	start)
		postfix_env_start >&2 || exit 1
		for v in POSTFIX_ENV_DIR POSTFIX_PORT POSTFIX_SMTPS_PORT \
			POSTFIX_LIMIT_PORT POSTFIX_CA \
			POSTFIX_MAILDIR_ROOT POSTFIX_USER POSTFIX_PASSWORD \
			POSTFIX_LOG DOVECOT_LOG; do
			eval "pfe_val=\$$v"
			printf "export %s='%s'\n" "$v" "$pfe_val"
		done
		;;
	stop)
		[ -n "${2:-${POSTFIX_ENV_DIR:-}}" ] || {
			echo "usage: $0 stop DIR" >&2; exit 2; }
		postfix_env_stop "${2:-$POSTFIX_ENV_DIR}"
		;;
	*)
		echo "usage: $0 start | stop DIR" >&2
		exit 2
		;;
	esac
	;;
esac
