# xunjian probe: a read-only inspection of one host, run as `sh -s` with this script on stdin.
#
# POSIX sh only (dash, bash, busybox ash); nothing is installed, written or changed on the host.
# Parameters come only from the XJ_* variables that the controller assigns, as single-quoted
# literals, in a preamble before this text; they are used as data (quoted, or as glob patterns
# for the configured backups and logs), never evaluated as code.
#
# Output: sections, each opened by a marker line `==== xunjian:<section> <nonce> ====` preceded
# by a newline (so output without a trailing newline cannot swallow the marker). The nonce is
# random per run, so a log line cannot forge a marker. A command that fails or writes to stderr
# is followed by a section `<section>:status` whose body is `rc=<code>` and its stderr.
#
# Everything lives in main(), run with stdin from /dev/null: the shell has read the whole script
# before any command starts, so no command can read the rest of the script as its input.

main() {
	: "${XJ_NONCE:=-}"
	: "${XJ_SINCE:=0}"
	: "${XJ_MAX_LINES:=20000}"
	: "${XJ_PATTERN:=}"
	: "${XJ_GREP_FLAGS:=-E}"
	: "${XJ_SYSLOG_FILES:=}"
	: "${XJ_JOURNAL:=1}"
	: "${XJ_LOGS:=}"
	: "${XJ_CERTS:=}"
	: "${XJ_BACKUPS:=}"
	case $XJ_SINCE in '' | *[!0-9]*) XJ_SINCE=0 ;; esac
	case $XJ_MAX_LINES in '' | *[!0-9]* | 0) XJ_MAX_LINES=20000 ;; esac
	case $XJ_GREP_FLAGS in -E | -Ei) ;; *) XJ_GREP_FLAGS=-E ;; esac
	LC_ALL=C
	export LC_ALL
	PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
	export PATH
	NL='
'
	exec 3>&1

	hdr probe
	printf 'version=1\nuid=%s\nsystemd=%s\nutc_offset=%s\nnow=%s\nshell=%s\n' \
		"$(id -u 2>/dev/null)" "$(systemd_running)" "$(date +%z)" "$(date +%s)" \
		"$(readlink /proc/$$/exe 2>/dev/null)"

	# CPU first, while this probe is still idle, so its own work does not count as load.
	run cpu.stat1 grep -E '^(cpu|btime) ' /proc/stat
	sleep 0.5 2>/dev/null || sleep 1
	run cpu.stat2 grep -E '^cpu ' /proc/stat
	run loadavg cat /proc/loadavg
	run nproc ncpus

	run identity.hostname cat /proc/sys/kernel/hostname
	run identity.machine_id cat /etc/machine-id
	run identity.os_release os_release
	run identity.uname uname -srm
	run identity.addresses addresses

	run meminfo cat /proc/meminfo
	run df.blocks df -P -k
	run df.inodes df -P -i
	run mounts cat /proc/mounts
	run mounts.filesystems cat /proc/filesystems
	run mounts.not_dirs mounted_files
	run uptime cat /proc/uptime
	run file_nr cat /proc/sys/fs/file-nr
	run processes proc_stats

	have timedatectl && run timesync.timedatectl limited timedatectl show
	have chronyc && run timesync.chronyc limited chronyc -c tracking
	have ntpq && run timesync.ntpq limited ntpq -pn
	if [ "$(systemd_running)" = 1 ]; then
		run services systemctl list-units --type=service --all --no-legend --plain --no-pager
	fi
	if have ss; then
		run ports.ss ss -ltnup
	else
		for f in tcp tcp6 udp udp6; do
			[ -r /proc/net/$f ] && run ports.$f cat /proc/net/$f
		done
	fi

	set -f
	IFS=$NL
	i=0
	for p in $XJ_CERTS; do
		run cert.$i pem_certificates "$p"
		i=$((i + 1))
	done
	i=0
	for p in $XJ_BACKUPS; do
		run backup.$i backup_files "$p"
		i=$((i + 1))
	done
	# Each configured file or glob, with its rotated predecessors (name.1, name-YYYYMMDD) first;
	# every file once, in that order.
	i=0
	seen=$NL
	for p in $XJ_LOGS; do
		set +f
		for f in $p.1 $p-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9] $p; do
			[ -f "$f" ] || continue
			case $seen in *"$NL$f$NL"*) continue ;; esac
			seen=$seen$f$NL
			hdr log.$i.file
			printf '%s\n' "$f"
			scan_log "$i" "$f"
			i=$((i + 1))
		done
		set -f
	done
	IFS=' 	'"$NL"
	set +f

	if have journalctl; then
		# Where rsyslog writes the syslog files they hold what the journal holds: read one only.
		if [ "$XJ_JOURNAL" = 1 ] && [ -n "$XJ_PATTERN" ] && ! any_exists "$XJ_SYSLOG_FILES"; then
			run journal journal_matches
		fi
		run service_events unit_events
	fi
	coredumps
	history
	boots
	for f in /var/log/dpkg.log /var/log/apt/history.log /var/log/yum.log /var/log/dnf.rpm.log; do
		[ -f "$f" ] && run "packages.${f##*/}" tail -n 5000 "$f"
	done
	hdr end
}

hdr() {
	printf '\n==== xunjian:%s %s ====\n' "$1" "$XJ_NONCE"
}

# run SECTION COMMAND...: stdout into the section, stderr and a failing status into SECTION:status;
# returns the command's status.
run() {
	_name=$1
	shift
	hdr "$_name"
	_err=$("$@" 2>&1 1>&3 3>&-)
	_rc=$?
	if [ "$_rc" -ne 0 ] || [ -n "$_err" ]; then
		hdr "$_name:status"
		printf 'rc=%s\n%s\n' "$_rc" "$_err"
	fi
	return "$_rc"
}

have() {
	command -v "$1" >/dev/null 2>&1
}

systemd_running() {
	if [ -d /run/systemd/system ] && have systemctl; then echo 1; else echo 0; fi
}

# Tools that talk to a daemon get a deadline where `timeout` exists, so a hung daemon cannot
# hold the inspection.
limited() {
	if have timeout; then timeout 10 "$@"; else "$@"; fi
}

ncpus() {
	getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo
}

os_release() {
	if [ -r /etc/os-release ]; then cat /etc/os-release; else cat /usr/lib/os-release; fi
}

addresses() {
	if have ip; then ip -o addr show; else hostname -I; fi
}

# Mount points that are files (bind mounts in containers): no filesystem of their own to judge.
mounted_files() {
	while read -r _dev _mnt _rest; do
		case $_mnt in *\\*) continue ;; esac
		[ -d "$_mnt" ] || printf '%s\n' "$_mnt"
	done </proc/mounts
}

# pid (comm) state ppid … of every process; a process that ends meanwhile is simply absent.
proc_stats() {
	cat /proc/[0-9]*/stat 2>/dev/null
	return 0
}

# Only the certificate blocks travel, never a private key that shares the file.
pem_certificates() {
	if [ ! -f "$1" ]; then
		echo "not a regular file: $1" >&2
		return 2
	fi
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' <"$1"
}

# `mtime size path` of the newest regular files matching the glob, and `#count N` of them all.
backup_files() {
	set +f
	set -- $1
	set -f
	for _f; do
		shift
		[ -f "$_f" ] && set -- "$@" "$_f"
	done
	if [ $# -gt 0 ]; then
		stat -c '%Y %s %n' -- "$@" | sort -n | last_lines 5
	else
		echo "#count 0"
	fi
}

# Alarm-log lines are filtered here, so only matches travel; the controller applies the window
# after parsing timestamps. `log.N.meta`: size and mtime; `log.N`: the last XJ_MAX_LINES
# matches and a final `#count N` line with the number of all matches.
scan_log() {
	_meta=$(stat -c '%s %Y' -- "$2" 2>/dev/null) || _meta='- -'
	hdr "log.$1.meta"
	printf '%s\n' "$_meta"
	_mtime=${_meta#* }
	case $_mtime in
	'' | *[!0-9]*) ;;
	*)
		if [ "$_mtime" -lt "$XJ_SINCE" ]; then
			return 0
		fi
		;;
	esac
	[ -n "$XJ_PATTERN" ] || return 0
	run "log.$1" grep_tail "$2"
}

grep_tail() {
	if [ ! -r "$1" ]; then
		echo "permission denied: $1" >&2
		return 2
	fi
	grep -a $XJ_GREP_FLAGS -e "$XJ_PATTERN" -- "$1" | last_lines
}

# The last ${1:-XJ_MAX_LINES} lines of stdin and a closing `#count N` of all of them.
last_lines() {
	awk -v max="${1:-$XJ_MAX_LINES}" '
		{ b[NR % max] = $0 }
		END {
			s = NR - max + 1
			if (s < 1) s = 1
			for (i = s; i <= NR; i++) print b[i % max]
			print "#count " NR
		}'
}

# `epoch host IDENT[PID]: MESSAGE`: the line the alarm rules are written for, with its time.
journal_matches() {
	journalctl -o short-unix --no-pager -q --since "@$XJ_SINCE" |
		grep -a $XJ_GREP_FLAGS -e "$XJ_PATTERN" | last_lines
}

any_exists() {
	for _f in $1; do
		[ -e "$_f" ] && return 0
	done
	return 1
}

# systemd's own messages about units failing or being restarted (see checks/parsers/systemd_events.py).
unit_events() {
	TZ=UTC journalctl _PID=1 -o short-iso --no-pager -q --since "@$XJ_SINCE" |
		grep -a -E 'Failed with result|Scheduled restart job|entered failed state|scheduling restart|ain process exited' |
		last_lines
}

coredumps() {
	# systemd-coredump logs each core with this MESSAGE_ID (see checks/parsers/coredumps.py).
	have journalctl && run coredumps.journal core_entries
	[ -n "$(crash_dirs)" ] && run coredumps.files crash_files
}

core_entries() {
	journalctl MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1 -o json --no-pager -q --since "@$XJ_SINCE" |
		tail -n 500
}

crash_dirs() {
	for d in /var/lib/systemd/coredump /var/crash /var/spool/abrt; do
		[ -d "$d" ] && echo "$d"
	done
}

# `mtime path` of what the crash handlers wrote since the window start.
crash_files() {
	for d in $(crash_dirs); do
		for f in "$d"/*; do
			[ -e "$f" ] && stat -c '%Y %n' -- "$f"
		done
	done | awk -v since="$XJ_SINCE" '$1 >= since'
}

# Boots and clean shutdowns: the binary wtmp tail (its last 2000 records of 384 bytes, which is
# where the window is), else the journal's boot list.
boots() {
	if [ -r /var/log/wtmp ] && have base64; then
		if have gzip; then
			run boots.wtmp.gz tail_wtmp gzip -c
		else
			run boots.wtmp tail_wtmp cat
		fi
	elif have journalctl; then
		run boots.journal env TZ=UTC journalctl --list-boots --no-pager
	fi
}

tail_wtmp() {
	tail -c 768000 /var/log/wtmp | "$@" | base64
}

# 24 h history: the xunjian agent's own store when it is installed (and sqlite3 may read it),
# else sysstat's binary files of today and yesterday (the two most recently written).
history() {
	_db=/var/lib/xunjian/history.sqlite
	if [ -r "$_db" ] && have sqlite3; then
		run history.agent sqlite3 -readonly -csv -header "$_db" \
			"SELECT * FROM samples WHERE at >= $XJ_SINCE ORDER BY at" && return 0
	fi
	have sadf || return 0
	for d in /var/log/sysstat /var/log/sa; do
		[ -d "$d" ] || continue
		n=0
		for f in $(ls -t "$d" 2>/dev/null); do
			case $f in sa[0-9]*) ;; *) continue ;; esac
			run "history.sadf.$n" sadf -d -- -u -r ALL -q -S "$d/$f"
			run "history.sadf_fs.$n" sadf -d -- -F MOUNT "$d/$f"
			n=$((n + 1))
			[ "$n" -lt 2 ] || break
		done
		return 0
	done
}

main </dev/null
