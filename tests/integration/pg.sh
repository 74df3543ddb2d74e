# tests/integration/pg.sh — a throw-away PostgreSQL 15 cluster for tests.
# shellcheck shell=bash
# shellcheck disable=SC2034
#
# Source after lib.sh and it_init:
#
#   . "$(dirname "$0")/pg.sh"
#   start_postgres            # sets PG_PORT, PG_PID, PG_SOCK, PG_DIR
#   pg_psql -d nexus -c 'SELECT 1'   # superuser "admin" over the socket
#   kill_postgres             # SIGKILL the postmaster and its children
#   restart_postgres          # same port and data directory
#
# The cluster lives in $IT_TMP/pg (data/, sock/), listens on 127.0.0.1 on a
# random port (unix socket in sock/ only), password (scram) auth over TCP,
# trust over the socket. When the tests run as root, the server runs as
# the unprivileged user "postgres" (or "nobody"), as PostgreSQL requires.
# The EXIT trap of lib.sh stops it by PID.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_user=
PG_AS=() # prefix that runs a command as the cluster's owner (exec, same PID)

# start_postgres [EXTRA -c settings...]: initdb (once) and start.
start_postgres() {
	[ -x "$PG_BIN/postgres" ] || fail "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql)"
	PG_DIR=$IT_TMP/pg
	PG_SOCK=$PG_DIR/sock
	if [ "$(id -u)" -eq 0 ]; then
		if id postgres >/dev/null 2>&1; then _pg_user=postgres; else _pg_user=nobody; fi
		PG_AS=(setpriv --reuid="$_pg_user" --regid="$(id -g "$_pg_user")" --clear-groups --)
		chmod 755 "$IT_TMP"
	fi
	if [ ! -d "$PG_DIR/data" ]; then
		mkdir -p "$PG_DIR/sock"
		[ -z "$_pg_user" ] || chown -R "$_pg_user" "$PG_DIR"
		"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U admin --auth-local=trust \
			--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$IT_LOGS/initdb.log" 2>&1 ||
			fail "initdb failed (see $IT_LOGS/initdb.log)"
	fi
	PG_EXTRA=("$@")
	local i
	for i in 1 2 3 4 5; do
		PG_PORT=$(free_port)
		_pg_launch && return 0
		grep -q 'could not bind\|already in use' "$IT_LOGS/postgres.log" || break
	done
	fail "postgres did not start (see $IT_LOGS/postgres.log)"
}

_pg_launch() {
	local t0 i
	t0=$(date +%s%N)
	echo "+ postgres -p $PG_PORT" >>"$IT_LOGS/postgres.log"
	"${PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -k "$PG_SOCK" \
		-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c log_min_messages=warning -c logging_collector=off \
		"${PG_EXTRA[@]}" >>"$IT_LOGS/postgres.log" 2>&1 </dev/null &
	PG_PID=$!
	_it_register "$PG_PID" postgres
	for ((i = 0; i < 300; i++)); do
		if "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -U admin -d postgres 2>/dev/null; then
			it_log "postgres ready on 127.0.0.1:$PG_PORT (pid $PG_PID) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
			return 0
		fi
		kill -0 "$PG_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# pg_psql ARGS...: psql as the superuser over the socket, quiet, stop on error.
pg_psql() {
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U admin "$@"
}

# kill_postgres: SIGKILL the postmaster, then its remaining children (by
# PID), and wait until they are gone.
kill_postgres() {
	local kids i
	kids=$(pgrep -P "$PG_PID" || true)
	kill -KILL "$PG_PID" 2>/dev/null || true
	wait "$PG_PID" 2>/dev/null || true
	# shellcheck disable=SC2086
	[ -z "$kids" ] || kill -KILL $kids 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		local alive=0 k
		for k in $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
		[ "$alive" -eq 0 ] && break
		sleep 0.05
	done
	rm -f "$PG_DIR/data/postmaster.pid"
	it_log "postgres killed (pid $PG_PID)"
}

# restart_postgres: start again on the same port and data directory.
restart_postgres() {
	_pg_launch || fail "postgres did not restart (see $IT_LOGS/postgres.log)"
}
