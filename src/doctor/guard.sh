# The doctor's repair guard: root repairs that a user cannot redirect.
# src/doctor/guard.rs explains the design; this is the POSIX sh it runs
# as root, with one `ese_step K 'FUNCTION ARGS...'` line per repair after it.
#
# The rules:
# - before root acts on a path, every directory above it is writable by
#   root alone. Directories someone else can write are locked (owner root,
#   no group/other write) from the top down, each while its parent is
#   already root-only, so no entry on the way can be swapped;
# - a directory a repair changes (chmod, chown) is locked too, and the
#   change is made when it is unlocked: so no step ever makes a directory
#   root-only that was not, and trusts a link in it;
# - a link is followed only if root owns it and it lies in a directory we
#   did not have to lock: only root can have made it;
# - on every exit, signals included (a second signal cannot cut it short),
#   the locked directories get their owner and mode back, or what a repair
#   set, deepest first, so each parent is still root-only while its child
#   is given back.

umask 077
ese_n=0
ese_deepest=0
# The markers' nonce is drawn here, not sent: what we type stays the same
# from run to run (replays match), and no output can know it in advance.
# It appears in no command line either (`ps` would show it): the backup
# directory has a random name of its own. Both come from the kernel's
# random UUIDs, read by the shell itself (a new one on every read; `od`
# and `tr` would be four programs, about 0.3 s on an emulated instance),
# from /dev/urandom where that file cannot be read.
{ IFS=- read -r ese_r1 ese_r2 ese_r3 ese_r4 ese_r5 && N=$ese_r1$ese_r2$ese_r3$ese_r4${ese_r5%????????}; } 2>/dev/null </proc/sys/kernel/random/uuid
{ IFS=- read -r ese_r1 ese_r2 ese_r3 ese_r4 ese_r5 && ese_b=$ese_r5; } 2>/dev/null </proc/sys/kernel/random/uuid
[ ${#N} = 24 ] || N=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
[ ${#ese_b} = 12 ] || ese_b=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
[ ${#N} = 24 ] && [ ${#ese_b} = 12 ] || { echo '@@ese-guard: no random numbers (/dev/urandom)'; exit 91; }
# The backup directory is named (and `date` run) at the first backup.
B=
printf '@@ese-guard:%s\n' "$N"

ese_say() { printf '@@ese:%s:%s\n' "$N" "$*"; }
ese_no() { ese_say "refused $*"; exit 90; }

# Whether $1 (a link is not followed) is writable by root alone.
ese_root_only() {
	ese_rs=$(stat -c '%u %a' -- "$1") || return 2
	set -- $ese_rs
	[ "$1" = 0 ] && [ $((0$2 & 18)) = 0 ]
}

# Whether we locked directory $1 (and have not given it back); sets ese_i.
ese_find() {
	ese_i=$ese_n
	while [ "$ese_i" -gt 0 ]; do
		eval "ese_fd=\$ese_d$ese_i"
		[ "$ese_fd" = "$1" ] && return 0
		ese_i=$((ese_i - 1))
	done
	return 1
}

# Takes write access to directory $1 from everyone but root, remembering
# owner, mode and depth. Its parent is root-only already: $1 cannot be swapped.
ese_lock() {
	ese_ls=$(stat -c '%u:%g %a' -- "$1") || ese_no "cannot stat $1"
	# Its depth: the slashes in it, counted by the shell.
	ese_dp=0 ese_lt=$1
	while :; do
		case $ese_lt in
		*/*) ese_lt=${ese_lt#*/} ese_dp=$((ese_dp + 1)) ;;
		*) break ;;
		esac
	done
	[ "$1" = / ] && ese_dp=0
	[ "$ese_dp" -gt "$ese_deepest" ] && ese_deepest=$ese_dp
	ese_n=$((ese_n + 1))
	eval "ese_d$ese_n=\$1 ese_s$ese_n=\$ese_ls ese_l$ese_n=\$ese_dp ese_c$ese_n= ese_f$ese_n="
	chown -h -- 0:0 "$1" && chmod -- go-w "$1" || ese_no "cannot lock $1"
}

# Locks directory $1 unless it is locked already; sets ese_i to its number.
ese_hold() {
	ese_find "$1" || ese_lock "$1"
	ese_find "$1"
}

# Gives every locked directory back, deepest first: its owner and mode, or
# what a repair set (ese_c: owner, ese_f: mode) while it was locked.
ese_unlock() {
	ese_ul=$ese_deepest
	while [ "$ese_ul" -ge 0 ]; do
		ese_ui=1
		while [ "$ese_ui" -le "$ese_n" ]; do
			eval "ese_ud=\$ese_d$ese_ui ese_us=\$ese_s$ese_ui ese_uo=\$ese_c$ese_ui ese_um=\$ese_f$ese_ui ese_dp=\$ese_l$ese_ui"
			if [ -n "$ese_ud" ] && [ "$ese_dp" = "$ese_ul" ]; then
				# A repair's octal mode is set at once; any other
				# (`go-w`) applies to the mode the directory had.
				ese_m1=${ese_us#* } ese_m2=$ese_um
				case $ese_um in
				'' | *[!0-7]*) ;;
				*) ese_m1=$ese_um ese_m2= ;;
				esac
				chown -h -- "${ese_uo:-${ese_us% *}}" "$ese_ud" && chmod -- "$ese_m1" "$ese_ud" &&
					{ [ -z "$ese_m2" ] || chmod -- "$ese_m2" "$ese_ud"; } ||
					ese_say "unlock-failed ${ese_uo:-${ese_us% *}} ${ese_um:-${ese_us#* }} $ese_ud"
				eval "ese_d$ese_ui="
			fi
			ese_ui=$((ese_ui + 1))
		done
		ese_ul=$((ese_ul - 1))
	done
	ese_n=0
}

# Locks every directory above $1 that someone other than root can write and
# sets ese_p to $1's physical path. A link on the way is followed only if
# root owns it and its directory was root-only without our lock.
ese_walk() {
	ese_p=/ ese_r=${1#/} ese_h=0
	while [ -n "$ese_r" ]; do
		ese_c=${ese_r%%/*}
		case $ese_r in */*) ese_r=${ese_r#*/} ;; *) ese_r= ;; esac
		case $ese_c in
		'' | .) continue ;;
		..) ese_p=$(dirname -- "$ese_p"); continue ;;
		esac
		ese_x=${ese_p%/}/$ese_c
		if [ -z "$ese_r" ]; then ese_p=$ese_x; return 0; fi
		if [ -L "$ese_x" ]; then
			ese_find "$ese_p" && ese_no "$ese_x is a symbolic link in a directory its user can write"
			[ "$(stat -c %u -- "$ese_x")" = 0 ] || ese_no "$ese_x is a symbolic link root did not make"
			ese_h=$((ese_h + 1))
			[ "$ese_h" -le 40 ] || ese_no "too many symbolic links on the way to $1"
			ese_t=$(readlink -- "$ese_x") || ese_no "cannot read the link $ese_x"
			case $ese_t in /*) ese_p=/ ;; esac
			ese_r=${ese_t#/}/$ese_r
			continue
		fi
		[ -d "$ese_x" ] || ese_no "$ese_x is not a directory"
		ese_root_only "$ese_x" || ese_find "$ese_x" || ese_lock "$ese_x"
		ese_p=$ese_x
	done
}

# Walks to $2 and insists on what is there: f (a regular file with no
# second name: a hard link would carry the repair to a file elsewhere),
# e (such a file, or a directory), or - (nothing yet). Never a link.
ese_leaf() {
	ese_walk "$2"
	case $1 in
	-) if [ -e "$ese_p" ] || [ -L "$ese_p" ]; then ese_no "$ese_p appeared since the check"; fi; return 0 ;;
	esac
	[ -L "$ese_p" ] && ese_no "$ese_p is a symbolic link"
	[ "$1" = e ] && [ -d "$ese_p" ] && return 0
	[ -f "$ese_p" ] && [ "$(stat -c %h -- "$ese_p")" = 1 ] || ese_no "$ese_p is not a regular file with a single name"
}

# Copies $1 under B before it is edited.
ese_backup() {
	[ -n "$B" ] || B=/var/backups/ec2-serial-expect/$(date -u +%Y%m%dT%H%M%SZ)-$ese_b
	mkdir -p -m 700 -- "$B${1%/*}" && cp -p -- "$1" "$B$1" && ese_say "backup $B$1"
}

# A directory's new mode or owner is set when it is given back (see above).
ese_chmod() {
	ese_leaf e "$2"
	if [ -d "$ese_p" ]; then
		ese_hold "$ese_p" && eval "ese_f$ese_i=\$1"
	else
		chmod -- "$1" "$ese_p"
	fi
}

ese_chown() {
	ese_leaf e "$2"
	if [ -d "$ese_p" ]; then
		ese_hold "$ese_p" && eval "ese_c$ese_i=\$1"
	else
		chown -h -- "$1" "$ese_p"
	fi
}

ese_mkdir() {
	ese_leaf - "$2"
	install -d -m 700 -o "$1" -g "$(id -gn -- "$1")" -- "$ese_p"
}

ese_mkfile() {
	ese_leaf - "$2"
	install -m 600 -o "$1" -g "$(id -gn -- "$1")" -- /dev/null "$ese_p"
}

ese_strip_cr() {
	ese_leaf f "$1"
	ese_backup "$ese_p" && sed -i -e 's/\r$//' -- "$ese_p"
}

ese_append() {
	ese_leaf f "$1"
	if [ -n "$(tail -c 1 -- "$ese_p")" ]; then echo >>"$ese_p"; fi
	printf '%s\n' "$2" >>"$ese_p"
}

# Relabels ~/.ssh and its key file only, with ~/.ssh locked: a recursive
# relabel would walk entries the user can swap while it runs.
ese_restorecon() {
	ese_leaf e "$1"
	[ -d "$ese_p" ] && ese_hold "$ese_p"
	restorecon -v -- "$ese_p" || return
	if [ -f "$ese_p/authorized_keys" ] && [ ! -L "$ese_p/authorized_keys" ]; then
		restorecon -v -- "$ese_p/authorized_keys"
	fi
}

# Comments out line $2 of sshd config file $1 (under root-only /etc/ssh).
ese_sshd_off() {
	ese_leaf f "$1"
	ese_backup "$ese_p" && sed -i -e "$2s/^/# disabled by ec2-serial-expect: /" -- "$ese_p"
}

# Runs repair number $1: $2 is a command line of the functions above (or a
# plain root command), quoted by guard.rs.
ese_step() {
	ese_say "begin $1"
	eval "$2" 2>&1
	ese_say "end $1 $?"
}

# Whatever ends the script, the directories go back, and no further signal
# can interrupt that.
trap 'trap "" INT TERM HUP; ese_unlock; ese_say done' EXIT
trap 'trap "" INT TERM HUP; exit 130' INT
trap 'trap "" INT TERM HUP; exit 143' TERM
trap 'trap "" INT TERM HUP; exit 129' HUP
ese_root_only / || ese_lock /
