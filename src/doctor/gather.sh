# The doctor's fact gathering: one root command that prints every fact the
# checks need. src/doctor/facts.rs explains the design and lists the
# sections (`SECTIONS`: each name, and which look asks for it); this is the
# POSIX sh it runs. Each section NAME is the function `ese_NAME`; facts.rs
# types only the functions a look needs, then a line such as
#   u='ec2-user'; a=; ese_run 'passwd shell akpath stat keys' 'shadow df'
# (the first list runs in order, the second beside it: see ese_run).
#
# Nothing printed on the console can forge a fact: every line this prints
# goes out behind a nonce drawn here, on the instance, so it is in no typed
# line (whose echo anyone watching the tty could read) and no one knows it
# before the first line shows it; the last line counts the lines before it.
# The parser reads only lines that carry the nonce, and refuses a second
# start line, a repeated or unknown section, or a count that does not match.
#
# The functions have no here-documents or multi-line strings: facts.rs types
# them without their comments and indentation. The markers are split by
# quotes, so no typed line holds the text the output carries.

# Draws the nonce, prints the start line, reads the passwd entry, runs the
# sections of $1 in order and those of $2 beside them, and prints all of
# their lines, then the end line with the count, each behind the nonce.
# Every program started on a small instance (or a VM under emulation) costs
# tens of milliseconds, mostly CPU, so two lines of work nearly halve the
# wait where there are two CPUs. No temporary file (the disk may be full):
# $2 runs in a command substitution on the right of a pipe while $1 writes
# into the pipe, whose buffer holds all of its output; the shell's own
# `read` then copies both through, behind the nonce.
ese_run() {
	{ IFS=- read -r ese_r1 ese_r2 ese_r3 ese_r4 ese_r5 && N=$ese_r1$ese_r2$ese_r3$ese_r4${ese_r5%????????}; } 2>/dev/null </proc/sys/kernel/random/uuid
	[ ${#N} = 24 ] || N=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	[ ${#N} = 24 ] || { echo '@@ese''-facts: no random numbers (/dev/urandom)'; exit 91; }
	printf '@@ese''-facts:%s\n' "$N"
	p=$(getent passwd "$u")
	gs=$?
	r=${p#*:*:*:*:*:} h=${r%%:*} s=${r#*:}
	{ ese_each $1; } | {
		[ -z "$2" ] || ese_b=$(ese_each $2)
		ese_c=0
		while IFS= read -r ese_l; do
			ese_c=$((ese_c + 1))
			printf '%s %s\n' "$N" "$ese_l"
		done
		ese_nl=$(printf '\nx')
		ese_nl=${ese_nl%x}
		set -f
		ese_i=$IFS IFS=$ese_nl
		for ese_l in $ese_b; do
			ese_c=$((ese_c + 1))
			printf '%s %s\n' "$N" "$ese_l"
		done
		IFS=$ese_i
		set +f
		printf '%s @@ese'':end %s\n' "$N" "$ese_c"
	}
}

# Each section of "$@": its header, then what its function prints.
ese_each() {
	for ese_s; do
		echo "@@ese"":$ese_s"
		"ese_$ese_s"
	done
}

ese_passwd() {
	[ -n "$p" ] && printf '%s\n' "$p"
}

ese_shell() {
	[ -n "$s" ] && [ -x "$s" ] && echo ok
}

# The shadow entry's lock state and expiry day, never the hash. Locked is a
# leading `!`, as sshd reads it; `*` (no password at all, as a key-only
# account has) does not stop a key.
ese_shadow() {
	q=$(getent shadow "$u")
	w=${q#*:} e=${q#*:*:*:*:*:*:*:}
	w=${w%%:*} e=${e%%:*}
	case $w in '!'*) l=L ;; '') l=NP ;; *) l=P ;; esac
	[ -n "$q" ] && echo "$l $e"
}

# sshd's effective settings for the user, once (`sshd -T` serves as the
# configuration test too: it fails, with the same message, where `sshd -t`
# would), read with the shell's own `case`, where `awk` and `grep` would be
# two more programs: $S gets the settings the checks read, $a the first
# AuthorizedKeysFile entry as written (default `.ssh/authorized_keys`), $C
# is set when a setting a repair may comment out is not the default, $G when
# AllowGroups or DenyGroups is set. Globbing is off while the lines are split
# (a value may hold `*`). Then ese_expand.
ese_settings() {
	T=$(sshd -T -C user="$u",host=localhost,addr=127.0.0.1 2>&1)
	t=$?
	ese_read_settings
	ese_expand
}

ese_read_settings() {
	nl=$(printf '\nx')
	nl=${nl%x} a= S= C= G=
	set -f
	ifs=$IFS IFS=$nl
	for L in $T; do
		case $L in
		'authorizedkeysfile '*) [ -n "$a" ] || a=${L#* } ;;
		'pubkeyauthentication no') C=1 ;;
		'allowgroups '* | 'denygroups '*) G=1 ;;
		esac
		case $L in
		strictmodes\ * | pubkeyauthentication\ * | authorizedkeysfile\ * | authorizedkeyscommand\ * | pubkeyacceptedalgorithms\ * | pubkeyacceptedkeytypes\ * | usepam\ * | allowusers\ * | denyusers\ * | allowgroups\ * | denygroups\ *) S=$S$L$nl ;;
		esac
	done
	IFS=$ifs
	set +f
	a=${a%% *}
	[ -n "$a" ] || a=.ssh/authorized_keys
	case $a in .ssh/authorized_keys | %h/.ssh/authorized_keys) ;; *) C=1 ;; esac
}

# Expands `%h`, `%u` and `%%` in $a, left to right as sshd does, and makes
# it absolute (relative to the home, $h).
ese_expand() {
	x=$a a=
	while :; do
		case $x in
		*%*)
			a=$a${x%%\%*} x=${x#*\%}
			case $x in
			h*) a=$a$h x=${x#?} ;;
			u*) a=$a$u x=${x#?} ;;
			%*) a=$a% x=${x#?} ;;
			*) a=$a% ;;
			esac
			;;
		*)
			a=$a$x
			break
			;;
		esac
	done
	case $a in /*) ;; *) a="$h/$a" ;; esac
}

# The key file's path: the one the diagnosis found (typed as a=), or sshd's.
# Keys are read from the file the checks judge: the configured one, or the
# default when the configured one is missing (see the checks). Root reads it
# only when it is a regular file reached through no link the user could have
# made (~ and ~/.ssh are the user's): a link to /dev/zero or a FIFO would make
# the reads block or grow; $K says why it is not read. Even so, each read is
# bounded in time (the user can swap the file between the test and the
# read) and in lines.
ese_akpath() {
	[ -n "$a" ] || ese_settings
	echo "$a"
	k=$a
	[ -e "$a" ] || k="$h/.ssh/authorized_keys"
	K=
	case $k in "$h"/*) [ -h "$h" ] || [ -h "$h/.ssh" ] && K='lies behind a symbolic link (~ or ~/.ssh)' ;; esac
	if [ -n "$K" ]; then :
	elif [ -h "$k" ]; then K='is a symbolic link'
	elif [ -e "$k" ] && [ ! -f "$k" ]; then K='is not a regular file'
	fi
	W=
	command -v timeout >/dev/null && W='timeout 5'
}

ese_stat() {
	stat -c '%F|%U|%G|%a|%n' /home "$h" "$h/.ssh" "$a" "$h/.ssh/authorized_keys" /etc/ssh 2>/dev/null
}

# Fingerprint and type only, cut by the shell's `read`: the comment between
# them is the file owner's text, kept out of what the doctor parses. At
# most 2000 keys (then `more`).
ese_keys() {
	if [ -n "$K" ]; then echo "unread $K"; return; fi
	[ -e "$k" ] || return 0
	$W ssh-keygen -lf "$k" 2>/dev/null | {
		n=0
		while read -r _ f c; do
			n=$((n + 1))
			if [ $n -gt 2000 ]; then echo more; break; fi
			echo "$f ${c##* }"
		done
	}
}

# Lines ending in CR, and lines that are neither blank, a comment nor a key
# entry (a key wrapped by a copy and paste).
ese_keylines() {
	[ -z "$K" ] && [ -e "$k" ] || return 0
	$W awk '/\r$/{c++} !/^[[:space:]]*(#|$)/&&!/(^|[[:space:]])(ssh-|ecdsa-|sk-)[a-z0-9@.-]+[[:space:]]+AAAA/{b++} END{print c+0; print b+0}' "$k" 2>/dev/null
}

ese_sshdt() {
	[ $t = 0 ] && echo ok || printf '%s\n' "$T"
}

ese_sshdT() {
	[ $t = 0 ] && printf %s "$S"
}

# Where a setting is made matters only to a repair that comments it out:
# looked up only when one may be needed.
ese_sshdconf() {
	[ -n "$C" ] && grep -HniE '^[[:space:]]*(authorizedkeysfile|pubkeyauthentication|strictmodes)[[:space:]]' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null
}

# The pid file sshd keeps while it runs, if the pid is an sshd; else ask
# systemd about both unit names (Debian's ssh, the others' sshd), and pgrep
# where neither is active.
ese_running() {
	p=
	[ -r /run/sshd.pid ] && read -r p </run/sshd.pid
	c=
	case $p in '' | *[!0-9]*) ;; *) [ -r /proc/$p/comm ] && read -r c </proc/$p/comm ;; esac
	if [ "$c" = sshd ]; then echo "$p"; else { systemctl is-active ssh sshd || pgrep -x sshd; } 2>/dev/null; fi
}

ese_hostkeys() {
	for f in /etc/ssh/ssh_host_*_key; do [ -e "$f" ] && echo "$f"; done
}

# The groups matter only to AllowGroups/DenyGroups: asked for only when one
# is set, or when sshd's settings were not read (a verification after an
# unlock).
ese_groups() {
	[ -z "$T" ] || [ -n "$G" ] || return 0
	id -Gn "$u" 2>/dev/null
}

ese_selinux() {
	command -v getenforce >/dev/null && getenforce && ls -Zd "$h/.ssh" 2>/dev/null
}

# /home in fstab but not in the mount table, read by the shell.
ese_mount() {
	f= o=
	while read -r d m _; do case $d in '#'*) ;; *) [ "$m" = /home ] && f=1 ;; esac; done </etc/fstab
	while read -r d m _; do [ "$m" = /home ] && o=1; done </proc/mounts
	[ -n "$f" ] && [ -z "$o" ] && echo unmounted
}

ese_df() {
	df --output=pcent,ipcent /home 2>/dev/null
}

# Since boot (the journal), else the log files' last lines: the last 10 that
# say why a login failed, oldest first. Lines naming the user, and the
# `[preauth]` refusals of a signature algorithm, which name no user
# (scanners' key-exchange noise does not match).
ese_log() {
	j=$(journalctl -q -b -u ssh -u sshd --no-pager -n 300 2>/dev/null)
	[ -n "$j" ] || j=$(tail -q -n 300 /var/log/auth.log /var/log/secure 2>/dev/null)
	printf '%s\n' "$j" | awk -v u="$u" '(index($0,u)&&tolower($0)~/refused|not allowed|could not|invalid|bad ownership|authentication/)||(/preauth/&&/not in PubkeyAcceptedAlgorithms/){l[n++]=$0} END{for(i=(n>10?n-10:0);i<n;i++)print l[i]}'
}

ese_os() {
	while IFS== read -r k v; do case $k in ID | ID_LIKE | PRETTY_NAME) echo "$k=$v" ;; esac; done 2>/dev/null </etc/os-release
}

# No account (and not for want of a name service: getent says 2 for "no
# such key"): the home a deleted user leaves (numeric ids: the name is
# gone), the administrators' groups, a group left with the user's name, and
# the accounts with a login shell.
ese_absent() {
	[ -z "$p" ] || return 0
	[ $gs = 2 ] || echo "lookup $gs"
	stat -c 'home %F|%u|%g|%U|%n' "/home/$u" 2>/dev/null
	while IFS=: read -r g _; do case $g in adm | wheel | sudo) echo "group $g" ;; "$u") echo own ;; esac; done </etc/group
	while IFS=: read -r n _ i _ _ _ sh; do
		case $sh in */nologin | */false) continue ;; esac
		[ "$i" -ge 1000 ] 2>/dev/null && [ "$i" -lt 60000 ] && echo "user $n"
	done </etc/passwd
}

# Which accounts' key files hold the key $F. Each key file is read as its
# owner when setpriv exists (as sshd reads it), never through a link,
# bounded in time (a FIFO swapped in would block) and in number; root and
# accounts with no shell are skipped (cloud-init's root key only says "log
# in as ...").
ese_holders() {
	R=
	command -v setpriv >/dev/null && R=1
	c=0
	while IFS=: read -r n _ i gi _ d sh; do
		[ "$i" = 0 ] && continue
		case $sh in */nologin | */false) continue ;; esac
		[ -h "$d/.ssh" ] && continue
		for f in "$d/.ssh/authorized_keys" "$d/.ssh/authorized_keys2"; do
			[ -f "$f" ] && [ ! -h "$f" ] || continue
			c=$((c + 1))
			[ $c -gt 100 ] && break 2
			case $(timeout 5 ${R:+setpriv --reuid=$i --regid=$gi --clear-groups} ssh-keygen -lf "$f" 2>/dev/null) in *" $F "*) echo "$n $f" ;; esac
		done
	done </etc/passwd
}
