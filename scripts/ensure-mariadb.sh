#!/usr/bin/env bash
# Make sure MariaDB answers on 127.0.0.1:3306 as root with an empty password and has database `test`.
# Installs it from Debian's packages when missing, starts it when stopped, and allows root over TCP.
# Exits non-zero (so CI fails rather than skips) when that cannot be done.
set -uo pipefail
HOST=127.0.0.1
ok() { mariadb -uroot -h"$HOST" -e 'select 1' test >/dev/null 2>&1; }
have_client() { command -v mariadb >/dev/null 2>&1; }
if have_client && ok; then exit 0; fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "MariaDB is not installed: installing mariadb-server from Debian's packages" >&2
    as_root apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mariadb-server >/dev/null || {
        echo "error: could not install mariadb-server" >&2; exit 1; }
fi
if ! mariadb-admin ping >/dev/null 2>&1; then
    echo "starting MariaDB" >&2
    as_root service mariadb start >/dev/null 2>&1 ||
        as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 1 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
if ! ok; then
    echo "allowing root with an empty password over 127.0.0.1" >&2
    as_root mariadb -uroot <<'SQL' || true
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
FLUSH PRIVILEGES;
SQL
fi
if ok; then exit 0; fi
echo "error: MariaDB is not reachable at $HOST:3306 as root with an empty password (database test)" >&2
exit 1
