# Runs inside the guest, as root, in the mounted export: makes one of everything a root
# filesystem holds and reports how the guest sees it (`VALUE stat-NAME ...`), for the host to
# compare with what the security model promises. check/expect_eq come from the guest's init.
value() { echo "VALUE $1 $2"; }
# raw mode (hex), owner, group, device major,minor (hex), size, links
report() { for n in "$@"; do value "stat-$n" "$(stat -c '%f %u %g %t,%T %s %h' "$n" 2>&1)"; done; }

mkdir m && cd m || exit 1
echo data > file
chown 1001:1002 file
chmod 4755 file
echo data2 > sgid-file
chmod 2750 sgid-file
mkdir dir
chown 1003:1004 dir
chmod 3775 dir
ln -s file link
chown -h 1005:1006 link
ln -s /etc/passwd abs-link
mkfifo fifo
chown 1007:1008 fifo
check mknod-char mknod cdev c 1 3
check mknod-block mknod bdev b 8 1
ln file hard
echo inner > dir/inner
report file sgid-file dir link abs-link fifo cdev bdev hard dir/inner

expect_eq readlink "$(readlink link)" file
expect_eq follow-link "$(cat link)" data
expect_eq hardlink-count "$(stat -c %h file)" 2
expect_eq readdir "$(ls | tr '\n' ' ')" "abs-link bdev cdev dir fifo file hard link sgid-file "
expect_eq ls-types "$(ls -l | grep -v '^total' | cut -c1 | tr -d '\n')" "lbcdp--l-"

# the tools a guest copies trees with keep every type, owner and mode
check cp-a cp -a /mnt/m /mnt/copy
report ../copy/file ../copy/link ../copy/cdev ../copy/fifo ../copy/dir
check tar-c tar -cf /tmp/m.tar -C /mnt m
mkdir ../untar
check tar-x tar -xpf /tmp/m.tar -C /mnt/untar
report ../untar/m/file ../untar/m/link ../untar/m/bdev ../untar/m/dir

# xattrs: the guest's own namespaces, and the server's metadata out of reach
check setfattr-user setfattr -n user.note -v hello file
expect_eq getfattr-user "$(getfattr --only-values -n user.note file)" hello
check setfattr-trusted setfattr -n trusted.overlay.opaque -v y dir
expect_eq getfattr-trusted "$(getfattr --only-values -n trusted.overlay.opaque dir)" y
value xattr-list "$(getfattr -d -m - file 2>/dev/null | grep -v '^#' | cut -d= -f1 | sort | tr '\n' ' ')"
value set-server-meta "$(setfattr -n user.virtfs.uid -v 0 file 2>&1 && echo allowed)"

# ACLs (mounted with posixacl): stored, shown back, and enforced by the guest
check setfacl setfacl -m u:1234:rw- file
value getfacl "$(getfacl -c -p file 2>/dev/null | tr '\n' ' ')"
value acl-mode "$(stat -c %a file)"
# enforced by the guest's kernel from what the server keeps: 1234 may write through its ACL entry,
# 1235 (other: r-x) may not; pjdfstest's helper opens as any uid
value acl-open-1234 "$(/pjdfstest/pjdfstest -u 1234 -g 1234 open file O_WRONLY 2>/dev/null | tail -n 1)"
value acl-open-1235 "$(/pjdfstest/pjdfstest -u 1235 -g 1235 open file O_WRONLY 2>/dev/null | tail -n 1)"
# a directory's default ACL is inherited by what is made in it
check setfacl-default setfacl -d -m u:1234:rwx dir
touch dir/inherits
value acl-inherited "$(getfacl -c -p dir/inherits 2>/dev/null | tr '\n' ' ')"
cd ..
